package io.squeezerface.core

/**
 * A small JSON reader (RFC 8259) for model cards and the golden vectors: objects become
 * `Map<String, Any?>` (insertion-ordered), arrays `List<Any?>`, numbers `Double`, plus `String`,
 * `Boolean` and `null`. No dependency, so the core stays plain Kotlin on the JVM and on Android.
 */
object Json {
    fun parse(text: String): Any? {
        val p = Parser(text)
        p.skipWhitespace()
        val value = p.value()
        p.skipWhitespace()
        if (p.i != text.length) p.fail("trailing characters")
        return value
    }

    private class Parser(val s: String) {
        var i = 0

        fun fail(what: String): Nothing = throw IllegalArgumentException("JSON: $what at offset $i")

        fun skipWhitespace() {
            while (i < s.length && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++
        }

        fun value(): Any? {
            if (i >= s.length) fail("unexpected end")
            return when (s[i]) {
                '{' -> obj()
                '[' -> arr()
                '"' -> str()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> num()
            }
        }

        private fun literal(word: String, v: Any?): Any? {
            if (!s.startsWith(word, i)) fail("bad literal")
            i += word.length
            return v
        }

        private fun obj(): Map<String, Any?> {
            val out = LinkedHashMap<String, Any?>()
            i++
            skipWhitespace()
            if (i < s.length && s[i] == '}') { i++; return out }
            while (true) {
                skipWhitespace()
                if (i >= s.length || s[i] != '"') fail("expected a key")
                val key = str()
                skipWhitespace()
                if (i >= s.length || s[i] != ':') fail("expected ':'")
                i++
                skipWhitespace()
                out[key] = value()
                skipWhitespace()
                if (i >= s.length) fail("unterminated object")
                when (s[i]) {
                    ',' -> i++
                    '}' -> { i++; return out }
                    else -> fail("expected ',' or '}'")
                }
            }
        }

        private fun arr(): List<Any?> {
            val out = ArrayList<Any?>()
            i++
            skipWhitespace()
            if (i < s.length && s[i] == ']') { i++; return out }
            while (true) {
                skipWhitespace()
                out.add(value())
                skipWhitespace()
                if (i >= s.length) fail("unterminated array")
                when (s[i]) {
                    ',' -> i++
                    ']' -> { i++; return out }
                    else -> fail("expected ',' or ']'")
                }
            }
        }

        private fun str(): String {
            val sb = StringBuilder()
            i++
            while (true) {
                if (i >= s.length) fail("unterminated string")
                val c = s[i++]
                when (c) {
                    '"' -> return sb.toString()
                    '\\' -> {
                        if (i >= s.length) fail("bad escape")
                        when (val e = s[i++]) {
                            '"' -> sb.append('"'); '\\' -> sb.append('\\'); '/' -> sb.append('/')
                            'b' -> sb.append('\b'); 'f' -> sb.append('\u000C'); 'n' -> sb.append('\n')
                            'r' -> sb.append('\r'); 't' -> sb.append('\t')
                            'u' -> {
                                if (i + 4 > s.length) fail("bad \\u escape")
                                sb.append(s.substring(i, i + 4).toInt(16).toChar())
                                i += 4
                            }
                            else -> fail("bad escape '\\$e'")
                        }
                    }
                    else -> sb.append(c)
                }
            }
        }

        private fun num(): Double {
            val start = i
            while (i < s.length && s[i] in "+-0123456789.eE") i++
            if (start == i) fail("unexpected character '${s[start]}'")
            val text = s.substring(start, i)
            return text.toDoubleOrNull() ?: fail("bad number '$text'")
        }
    }
}

/** Typed access to parsed JSON; each throws IllegalArgumentException naming the key when it is missing. */
@Suppress("UNCHECKED_CAST")
fun Any?.obj(key: String): Map<String, Any?> =
    (this as Map<String, Any?>)[key] as? Map<String, Any?> ?: throw IllegalArgumentException("no object '$key'")

@Suppress("UNCHECKED_CAST")
fun Any?.objOrNull(key: String): Map<String, Any?>? = (this as Map<String, Any?>)[key] as? Map<String, Any?>

@Suppress("UNCHECKED_CAST")
fun Any?.arr(key: String): List<Any?> =
    (this as Map<String, Any?>)[key] as? List<Any?> ?: throw IllegalArgumentException("no array '$key'")

@Suppress("UNCHECKED_CAST")
fun Any?.num(key: String): Double =
    (this as Map<String, Any?>)[key] as? Double ?: throw IllegalArgumentException("no number '$key'")

@Suppress("UNCHECKED_CAST")
fun Any?.numOrNull(key: String): Double? = (this as Map<String, Any?>)[key] as? Double

@Suppress("UNCHECKED_CAST")
fun Any?.str(key: String): String =
    (this as Map<String, Any?>)[key] as? String ?: throw IllegalArgumentException("no string '$key'")

@Suppress("UNCHECKED_CAST")
fun Any?.strOrNull(key: String): String? = (this as Map<String, Any?>)[key] as? String

@Suppress("UNCHECKED_CAST")
fun Any?.bool(key: String): Boolean =
    (this as Map<String, Any?>)[key] as? Boolean ?: throw IllegalArgumentException("no boolean '$key'")

/** A JSON array of numbers, flattened (nested arrays in row-major order). */
fun List<Any?>.doubles(): DoubleArray {
    val out = ArrayList<Double>()
    fun walk(x: Any?) {
        when (x) {
            is Double -> out.add(x)
            is List<*> -> x.forEach { walk(it) }
            else -> throw IllegalArgumentException("not a number: $x")
        }
    }
    walk(this)
    return out.toDoubleArray()
}

fun List<Any?>.floats(): FloatArray = doubles().let { d -> FloatArray(d.size) { d[it].toFloat() } }

fun List<Any?>.ints(): IntArray = doubles().let { d -> IntArray(d.size) { d[it].toInt() } }
