package io.squeezerface.core

import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import kotlin.math.abs
import kotlin.math.max
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue

/**
 * The golden vectors written by android_demo/scripts/export_golden.py, found through the system property
 * `golden.dir` (or the environment variable GOLDEN_DIR): golden.json plus raw little-endian arrays in bin/.
 */
object Golden {
    val dir: File by lazy {
        val path = System.getProperty("golden.dir") ?: System.getenv("GOLDEN_DIR")
            ?: error("set -Dgolden.dir (or GOLDEN_DIR) to the output folder of android_demo/scripts/export_golden.py")
        File(path).also { require(File(it, "golden.json").isFile) { "no golden.json in $it" } }
    }
    val root: Any? by lazy { Json.parse(File(dir, "golden.json").readText()) }
    val synthetic: Map<String, Any?> by lazy { root.obj("synthetic") }

    @Suppress("UNCHECKED_CAST")
    val photos: List<Map<String, Any?>> by lazy { (root as Map<String, Any?>)["photos"] as? List<Map<String, Any?>> ?: emptyList() }

    /** The warpAffine arithmetic of the OpenCV that made the vectors (recorded by the export). */
    val warpKernel: WarpKernel by lazy { WarpKernel.forOpenCv(root.obj("generator").str("opencv")) }

    fun bytes(ref: Any?): ByteArray = File(dir, ref.str("file")).readBytes()
    fun shape(ref: Any?): IntArray = ref.arr("shape").ints()

    fun image(ref: Any?): RgbImage {
        val s = shape(ref)
        require(s.size == 3 && s[2] == 3 && ref.str("dtype") == "u8") { "not an RGB image: ${s.toList()}" }
        return RgbImage(s[1], s[0], bytes(ref))
    }

    fun f32(ref: Any?): FloatArray {
        require(ref.str("dtype") == "f32")
        val buf = ByteBuffer.wrap(bytes(ref)).order(ByteOrder.LITTLE_ENDIAN)
        return FloatArray(buf.remaining() / 4) { buf.getFloat() }
    }

    fun tensor(ref: Any?): TensorInfo =
        TensorInfo(ref.arr("shape").ints(), DType.of(ref.str("dtype")), ref.num("scale"), ref.num("zero_point").toInt())

    fun card(role: String): ModelCard = ModelCard.parse(File(dir, root.obj("cards").str(role)).readText())

    fun int8(values: List<Any?>): ByteArray = values.ints().let { v -> ByteArray(v.size) { v[it].toByte() } }
}

/**
 * Checks with stated tolerances; every check records the largest error seen per metric, which
 * `ZzGoldenReport` prints at the end of a run (the figures quoted in android_demo/README.md).
 */
object Check {
    class Stat(val tolerance: String) {
        var max = 0.0
        var checks = 0
        var values = 0L
        var differing = 0L
    }

    val stats = sortedMapOf<String, Stat>()

    @Synchronized
    private fun stat(metric: String, tolerance: String) = stats.getOrPut(metric) { Stat(tolerance) }

    /** max |a - b| <= tol over the arrays; `relative` scales the tolerance by max(1, |b|), or by
     * max(1, scale[i]) when `scale` is given (the magnitude of the operands a value was computed from). */
    fun close(
        metric: String, expected: DoubleArray, actual: DoubleArray, tol: Double, relative: Boolean = false,
        scale: DoubleArray? = null,
    ) {
        assertEquals("$metric: length", expected.size, actual.size)
        var worst = 0.0
        for (i in expected.indices) {
            val ref = scale?.get(i) ?: abs(expected[i])
            val e = abs(expected[i] - actual[i]) / (if (relative) max(1.0, ref) else 1.0)
            assertTrue("$metric: value $i: expected ${expected[i]}, got ${actual[i]} (tolerance $tol)", e <= tol)
            worst = max(worst, e)
        }
        stat(metric, (if (relative) "relative " else "") + tol).apply { max = max(max, worst); checks++; values += expected.size }
    }

    fun close(metric: String, expected: FloatArray, actual: FloatArray, tol: Double, relative: Boolean = false) =
        close(metric, expected.toDoubles(), actual.toDoubles(), tol, relative)

    fun exact(metric: String, expected: ByteArray, actual: ByteArray) {
        assertEquals("$metric: length", expected.size, actual.size)
        val first = expected.indices.firstOrNull { expected[it] != actual[it] }
        assertTrue("$metric: first difference at $first: ${first?.let { expected[it] }} vs ${first?.let { actual[it] }}", first == null)
        stat(metric, "exact").apply { checks++; values += expected.size }
    }

    fun exact(metric: String, expected: FloatArray, actual: FloatArray) {
        assertEquals("$metric: length", expected.size, actual.size)
        val first = expected.indices.firstOrNull { expected[it].toRawBits() != actual[it].toRawBits() }
        assertTrue("$metric: first difference at $first: ${first?.let { expected[it] }} vs ${first?.let { actual[it] }}", first == null)
        stat(metric, "exact").apply { checks++; values += expected.size }
    }

    fun <T> equal(metric: String, expected: T, actual: T) {
        assertEquals(metric, expected, actual)
        stat(metric, "exact").apply { checks++; values++ }
    }

    /** 8-bit images: every channel value within `maxLevels`, and at most `maxFraction` of them differing. */
    fun pixels(metric: String, expected: RgbImage, actual: RgbImage, maxLevels: Int = 1, maxFraction: Double = 0.005) {
        assertEquals("$metric: width", expected.width, actual.width)
        assertEquals("$metric: height", expected.height, actual.height)
        var worst = 0
        var differing = 0
        for (i in expected.data.indices) {
            val d = abs((expected.data[i].toInt() and 0xFF) - (actual.data[i].toInt() and 0xFF))
            if (d > 0) differing++
            worst = max(worst, d)
        }
        val fraction = differing.toDouble() / expected.data.size
        assertTrue("$metric: a value differs by $worst levels (tolerance $maxLevels)", worst <= maxLevels)
        assertTrue("$metric: ${"%.3f".format(fraction * 100)} % of values differ (tolerance ${maxFraction * 100} %)", fraction <= maxFraction)
        stat(metric, "<= $maxLevels level, <= ${maxFraction * 100} % values").apply {
            max = max(max, worst.toDouble()); checks++; values += expected.data.size; this.differing += differing
        }
    }
}

fun FloatArray.toDoubles() = DoubleArray(size) { this[it].toDouble() }

/** A model that answers with what the real model answered (in the Python runtime) for the closest
 * recorded input, and remembers how far each actual input was from that recording. */
class ReplayModel(
    override val input: TensorInfo,
    override val output: TensorInfo,
    private val recordings: List<Pair<ByteArray, ByteArray>>,
) : TensorModel {
    class Seen(val maxDiff: Int, val differing: Int, val size: Int)

    val seen = ArrayList<Seen>()

    override fun run(input: ByteArray): ByteArray {
        val signed = this.input.dtype == DType.INT8
        fun v(b: Byte) = if (signed) b.toInt() else b.toInt() and 0xFF
        val best = recordings.minByOrNull { (rec, _) ->
            if (rec.size != input.size) Long.MAX_VALUE else rec.indices.sumOf { abs(v(rec[it]) - v(input[it])).toLong() }
        } ?: error("no recordings")
        var worst = 0
        var differing = 0
        for (i in input.indices) {
            val d = abs(v(best.first[i]) - v(input[i]))
            if (d > 0) differing++
            worst = max(worst, d)
        }
        seen.add(Seen(worst, differing, input.size))
        return best.second
    }
}
