package io.squeezerface.core

import java.io.ByteArrayInputStream
import java.io.ByteArrayOutputStream
import java.io.DataInputStream
import java.io.DataOutputStream

/** The embedding model that made a gallery's templates; as `squeezerface.gallery.ModelInfo`, templates of
 * two models are comparable only when name, version and embedding size agree. */
data class ModelInfo(val name: String, val version: String, val embeddingSize: Int) {
    fun compatible(other: ModelInfo) = this == other

    /** Bound to the ciphertext as associated data: a gallery cannot be read back under another model. */
    val key: String get() = "$name|$version|$embeddingSize"

    companion object {
        fun of(card: ModelCard) = ModelInfo(card.name, card.version, card.embeddingSize)
    }
}

class GalleryFormatException(message: String) : IllegalArgumentException(message)

/**
 * The gallery as bytes (what the app encrypts and stores): magic "SQFG", format 1, the model, then each
 * identity's name and unit float32 templates. Big-endian (java.io.Data*Stream), independent of the device.
 */
object GalleryCodec {
    private const val MAGIC = 0x53514647 // "SQFG"
    private const val FORMAT = 1

    fun encode(gallery: TemplateGallery, model: ModelInfo): ByteArray {
        val bytes = ByteArrayOutputStream()
        DataOutputStream(bytes).use { out ->
            out.writeInt(MAGIC)
            out.writeInt(FORMAT)
            out.writeUTF(model.name)
            out.writeUTF(model.version)
            out.writeInt(model.embeddingSize)
            out.writeInt(gallery.size)
            for (name in gallery.names) {
                val id = gallery.identity(name)!!
                out.writeUTF(name)
                out.writeInt(id.templates.size)
                for (t in id.templates) {
                    if (t.size != model.embeddingSize) {
                        throw GalleryFormatException("'$name' has a template of size ${t.size}, not ${model.embeddingSize}")
                    }
                    t.forEach { out.writeFloat(it) }
                }
            }
        }
        return bytes.toByteArray()
    }

    /** The gallery and the model it was written with; refuses damaged data and other models' templates. */
    fun decode(bytes: ByteArray, expected: ModelInfo? = null, aggregate: Aggregate = Aggregate.MEAN): Pair<TemplateGallery, ModelInfo> {
        try {
            DataInputStream(ByteArrayInputStream(bytes)).use { inp ->
                if (inp.readInt() != MAGIC) throw GalleryFormatException("not a squeezerface gallery")
                val format = inp.readInt()
                if (format != FORMAT) throw GalleryFormatException("gallery format $format is not supported")
                val model = ModelInfo(inp.readUTF(), inp.readUTF(), inp.readInt())
                if (expected != null && !expected.compatible(model)) {
                    throw GalleryFormatException("gallery was made with ${model.key}, not ${expected.key}: re-enrol")
                }
                val count = inp.readInt()
                val ids = ArrayList<Identity>(count)
                repeat(count) {
                    val name = inp.readUTF()
                    val n = inp.readInt()
                    if (n < 1 || n > 10_000) throw GalleryFormatException("'$name' has $n templates")
                    ids.add(Identity(name, List(n) { FloatArray(model.embeddingSize) { inp.readFloat() } }))
                }
                if (inp.available() != 0) throw GalleryFormatException("trailing bytes after the gallery")
                return TemplateGallery(ids, aggregate) to model
            }
        } catch (e: java.io.IOException) {
            throw GalleryFormatException("damaged gallery: ${e.message}")
        }
    }
}
