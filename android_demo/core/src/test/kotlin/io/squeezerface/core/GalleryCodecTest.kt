package io.squeezerface.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/** The app's gallery: enrol / verify / forget in memory and the byte format it encrypts (no golden data). */
class GalleryCodecTest {
    private val model = ModelInfo("squeezerfacenet-980k", "1.0.0", 4)

    private fun unit(vararg v: Float) = Matching.normalize(v)

    @Test
    fun roundTripKeepsTemplatesAndScores() {
        val g = TemplateGallery()
        g.enroll("ann", listOf(unit(1f, 0f, 0f, 0f), unit(0.9f, 0.1f, 0f, 0f)))
        g.enroll("bob", listOf(unit(0f, 1f, 0f, 0f)))
        val (back, info) = GalleryCodec.decode(GalleryCodec.encode(g, model), model)
        assertEquals(model, info)
        assertEquals(listOf("ann", "bob"), back.names)
        for (name in g.names) {
            val a = g.identity(name)!!
            val b = back.identity(name)!!
            assertEquals(a.templates.size, b.templates.size)
            a.templates.zip(b.templates).forEach { (x, y) -> assertArrayEquals(x, y, 0f) }
            assertArrayEquals(a.mean, b.mean, 0f)
        }
        val probe = unit(1f, 0.05f, 0f, 0f)
        assertEquals(g.verify("ann", probe, 0.5).score, back.verify("ann", probe, 0.5).score, 0.0)
        assertTrue(back.verify("ann", probe, 0.5).same)
        assertFalse(back.verify("bob", probe, 0.5).same)
        assertEquals("ann", back.identify(probe, topK = 1).single().name)
    }

    @Test
    fun enrolAddsForgetRemoves() {
        val g = TemplateGallery()
        g.enroll("ann", listOf(unit(1f, 0f, 0f, 0f)))
        g.enroll("ann", listOf(unit(0f, 1f, 0f, 0f)))
        assertEquals(2, g.identity("ann")!!.templates.size)
        g.enroll("ann", listOf(unit(0f, 0f, 1f, 0f)), replace = true)
        assertEquals(1, g.identity("ann")!!.templates.size)
        assertTrue(g.forget("ann"))
        assertFalse(g.forget("ann"))
        assertEquals(0, g.size)
    }

    @Test
    fun anotherModelsGalleryIsRefused() {
        val bytes = GalleryCodec.encode(TemplateGallery(listOf(Identity("ann", listOf(unit(1f, 0f, 0f, 0f))))), model)
        try {
            GalleryCodec.decode(bytes, model.copy(version = "2.0.0"))
            fail("accepted another model's templates")
        } catch (e: GalleryFormatException) {
            assertTrue(e.message!!.contains("re-enrol"))
        }
        try {
            GalleryCodec.decode(bytes.copyOf(bytes.size - 3), model)
            fail("accepted a truncated gallery")
        } catch (e: GalleryFormatException) {
            assertTrue(e.message!!.isNotEmpty())
        }
    }
}
