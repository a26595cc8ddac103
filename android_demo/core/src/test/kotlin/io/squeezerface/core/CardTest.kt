package io.squeezerface.core

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/** The shipped models' cards, as exported beside the golden vectors, read by the Kotlin core. */
class CardTest {
    private val detector = Golden.card("detector")
    private val refiner = Golden.card("refiner")
    private val embedder = Golden.card("embedder")

    @Test
    fun detectorCardGivesTheRuntimeSettings() {
        val d = detector.detection!!
        assertEquals(Golden.root.obj("models").str("detector"), detector.file)
        assertEquals("tflite", detector.format)
        assertEquals(Layout.NHWC, detector.input.layout)
        assertEquals(refiner.file, d.refiner)
        val s = Golden.root.objOrNull("settings") ?: return
        assertEquals(s.num("score_threshold"), d.score, 0.0)
        assertEquals(s.num("nms_iou"), d.nmsIou, 0.0)
        assertEquals(s.num("input_size").toInt(), detector.input.height)
        assertEquals(s.num("refiner_passes").toInt(), d.refinerPasses)
    }

    @Test
    fun refinerCardDescribesA64PixelCrop() {
        assertEquals(Refine.CROP, refiner.input.height)
        assertEquals(Refine.CROP, refiner.input.width)
        assertNull(refiner.detection)
    }

    @Test
    fun embedderCardThresholds() {
        assertEquals(128, embedder.embeddingSize)
        assertTrue(embedder.points.size >= 2)
        for (p in embedder.points) {
            assertEquals(p.threshold, embedder.threshold(p.name), 0.0)
            p.targetFar?.let { assertEquals(p.threshold, embedder.threshold(it.toString()), 0.0) }
        }
        assertEquals(embedder.threshold("far_1e-03"), embedder.threshold("1e-3"), 0.0)
        assertEquals(embedder.threshold("far_1e-03"), embedder.threshold("0.001"), 0.0)
        val s = Golden.root.objOrNull("settings") ?: return
        assertEquals(s.num("threshold"), embedder.threshold(s.str("operating_point")), 0.0)
    }

    @Test
    fun unknownOperatingPointsAreRefused() {
        for (bad in listOf("far_1e-07", "nonsense")) {
            try {
                embedder.threshold(bad)
                fail("$bad accepted")
            } catch (e: OperatingPointException) {
                assertTrue(e.message!!, e.message!!.isNotEmpty())
            }
        }
    }

    @Test
    fun modelTensorsMatchTheCards() {
        val t = Golden.root.objOrNull("tensors") ?: return
        for ((role, card) in listOf("detector" to detector, "refiner" to refiner, "embedder" to embedder)) {
            val input = Golden.tensor(t.obj(role).obj("input"))
            assertEquals(card.input.layout, input.layout)
            assertEquals(card.input.height, input.shape[1])
            assertEquals(DType.INT8, input.dtype) // the shipped TFLite models take int8: the app quantizes
        }
    }
}
