package io.squeezerface.core

import org.junit.Assert.assertEquals
import org.junit.Test
import org.junit.runner.RunWith
import org.junit.runners.Parameterized

/**
 * Scores and decisions on the real embeddings: every pair of photos (cosine vs `FaceVerifier.compare`,
 * decision at the card's far_1e-03 threshold), and the gallery (`squeezerface.gallery.Gallery`) scores of
 * every probe against every enrolled person with "mean" and "best" aggregation plus the 1:1 decisions.
 * Tolerances: scores 1e-5 (float32 dot products in numpy, double here); decisions identical.
 */
@RunWith(Parameterized::class)
class PairsGoldenTest(private val kind: String, private val index: Int) {
    companion object {
        @JvmStatic
        @Parameterized.Parameters(name = "{0}[{1}]")
        fun cases(): List<Array<Any>> {
            if (Golden.photos.isEmpty()) return emptyList()
            val out = ArrayList<Array<Any>>()
            Golden.root.arr("pairs").indices.forEach { out.add(arrayOf("pair", it)) }
            Golden.root.obj("gallery").arr("probes").indices.forEach {
                out.add(arrayOf("gallery mean", it)); out.add(arrayOf("gallery best", it))
            }
            return out
        }

        private fun embedding(id: String): FloatArray =
            Golden.photos.first { it["id"] == id }.obj("alignment").arr("embedding").floats()
    }

    @Test
    fun matchesPython() {
        val card = Golden.card("embedder")
        val threshold = card.threshold(Golden.root.obj("settings").str("operating_point"))
        if (kind == "pair") {
            val pair = Golden.root.arr("pairs")[index]
            Check.equal("card threshold", pair.num("threshold"), threshold)
            val m = Match.of(embedding(pair.str("a")), embedding(pair.str("b")), card, "1e-3")
            Check.close("pair cosine scores", doubleArrayOf(pair.num("score")), doubleArrayOf(m.score), 1e-5)
            Check.equal("pair decisions", pair.bool("same"), m.same)
            assertEquals("far_1e-03", m.operatingPoint)
            return
        }
        val g = Golden.root.obj("gallery")
        val how = if (kind.endsWith("mean")) Aggregate.MEAN else Aggregate.BEST
        val people = g.arr("identities").map { it as String }
        val gallery = TemplateGallery(aggregate = how)
        for (name in people) gallery.enroll(name, g.obj("templates").arr(name).map { embedding(it as String) })
        val probe = embedding(g.arr("probes")[index] as String)
        val scores = gallery.identify(probe, topK = people.size).associate { it.name to it.score }
        val expected = g.obj("scores").arr(if (how == Aggregate.MEAN) "mean" else "best")[index] as List<Any?>
        Check.close("gallery ${kind.removePrefix("gallery ")} scores", expected.doubles(), DoubleArray(people.size) { scores.getValue(people[it]) }, 1e-5)
        if (how == Aggregate.MEAN) {
            val accepted = (g.arr("verify_mean_accepted")[index] as List<Any?>).map { it as Boolean }
            Check.equal("gallery 1:1 decisions", accepted, people.map { gallery.verify(it, probe, g.num("threshold")).same })
        }
    }
}
