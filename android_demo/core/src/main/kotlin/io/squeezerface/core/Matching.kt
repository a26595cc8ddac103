package io.squeezerface.core

import kotlin.math.max
import kotlin.math.sqrt

/** Embeddings, scores and decisions, as `squeezerface.verify` and `squeezerface.gallery`. */
object Matching {
    /** The vector scaled to unit length (norm floored at 1e-12, as `FaceEmbeddingModel.get_feat`). */
    fun normalize(v: FloatArray): FloatArray {
        var ss = 0.0
        for (x in v) ss += x.toDouble() * x
        val norm = max(sqrt(ss).toFloat(), 1e-12f)
        return FloatArray(v.size) { v[it] / norm }
    }

    /** Unit length as the gallery stores templates and probes: float32(v / norm), norm in double. */
    fun unitRow(v: FloatArray): FloatArray {
        var ss = 0.0
        for (x in v) ss += x.toDouble() * x
        val norm = sqrt(ss)
        require(norm >= 1e-6 && norm.isFinite()) { "a template must be finite and non-zero" }
        return FloatArray(v.size) { (v[it] / norm).toFloat() }
    }

    /** Cosine of two unit vectors: their dot product (accumulated in double). */
    fun cosine(a: FloatArray, b: FloatArray): Double {
        require(a.size == b.size) { "embeddings of different sizes: ${a.size} and ${b.size}" }
        var s = 0.0
        for (i in a.indices) s += a[i].toDouble() * b[i]
        return s
    }

    /** Same person when the cosine is above the threshold (strictly, as the runtime). */
    fun decide(score: Double, threshold: Double): Boolean = score > threshold
}

/** A comparison: cosine score, the threshold it was held against, the decision and the operating point. */
data class Match(val score: Double, val threshold: Double, val same: Boolean, val operatingPoint: String) {
    companion object {
        fun of(a: FloatArray, b: FloatArray, card: ModelCard, point: String = "far_1e-03"): Match {
            val score = Matching.cosine(a, b)
            val threshold = card.threshold(point)
            return Match(score, threshold, Matching.decide(score, threshold), OperatingPoints.name(point))
        }
    }
}

/** How an identity with several templates is scored: cosine to the renormalised mean of its templates
 * ("mean", robust to one poor photo) or the highest cosine over them ("best"). */
enum class Aggregate { MEAN, BEST }

/** One identity's templates (stored unit-length), with the renormalised mean precomputed. */
class Identity(val name: String, templates: List<FloatArray>) {
    val templates: List<FloatArray> = templates.map { Matching.unitRow(it) }
    val mean: FloatArray

    init {
        require(templates.isNotEmpty()) { "an identity needs at least one template" }
        val dim = templates[0].size
        require(templates.all { it.size == dim }) { "templates of different sizes" }
        val sum = FloatArray(dim)
        for (t in this.templates) for (i in 0 until dim) sum[i] += t[i]
        var ss = 0.0
        for (x in sum) ss += x.toDouble() * x
        val norm = max(sqrt(ss).toFloat(), 1e-12f)
        mean = FloatArray(dim) { sum[it] / norm }
    }

    fun score(probe: FloatArray, how: Aggregate): Double = when (how) {
        Aggregate.MEAN -> Matching.cosine(mean, probe)
        Aggregate.BEST -> templates.maxOf { Matching.cosine(it, probe) }
    }
}

data class Candidate(val name: String, val score: Double, val accepted: Boolean, val templates: Int)

/**
 * Enrolled identities in memory, scored like `squeezerface.gallery.Gallery`: 1:1 `verify` and 1:N
 * `identify` (best first, ties by name). Persistence (encrypted, on the device) is the app's business.
 */
class TemplateGallery(identities: Collection<Identity> = emptyList(), val aggregate: Aggregate = Aggregate.MEAN) {
    private val byName = LinkedHashMap<String, Identity>().apply { identities.forEach { put(it.name, it) } }

    val names: List<String> get() = byName.keys.toList()
    val size: Int get() = byName.size

    operator fun contains(name: String) = name in byName

    fun identity(name: String): Identity? = byName[name]

    /** Adds templates to `name` (creating it), or replaces its templates when `replace`. */
    fun enroll(name: String, embeddings: List<FloatArray>, replace: Boolean = false): Identity {
        require(name.isNotBlank()) { "a name must not be blank" }
        val old = if (replace) emptyList() else byName[name]?.templates ?: emptyList()
        return Identity(name, old + embeddings).also { byName[name] = it }
    }

    fun forget(name: String): Boolean = byName.remove(name) != null

    fun verify(name: String, probe: FloatArray, threshold: Double, how: Aggregate = aggregate): Match {
        val id = byName[name] ?: throw NoSuchElementException("no identity named '$name'")
        val score = id.score(Matching.unitRow(probe), how)
        return Match(score, threshold, Matching.decide(score, threshold), "explicit")
    }

    fun identify(probe: FloatArray, topK: Int = 5, threshold: Double? = null, how: Aggregate = aggregate): List<Candidate> {
        require(topK >= 1) { "topK must be positive, got $topK" }
        val p = Matching.unitRow(probe)
        return byName.values
            .map {
                val score = it.score(p, how)
                Candidate(it.name, score, threshold == null || score > threshold, it.templates.size)
            }
            .sortedWith(compareByDescending<Candidate> { it.score }.thenBy { it.name })
            .take(topK)
    }
}
