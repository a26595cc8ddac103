package io.squeezerface.demo

import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import io.squeezerface.core.GalleryCodec
import io.squeezerface.core.Match
import io.squeezerface.core.ModelInfo
import io.squeezerface.core.TemplateGallery
import java.io.File
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The on-device gallery: enrolled identities and their templates, kept in one file encrypted with
 * AES-256-GCM under a key generated in (and never leaving) the Android Keystore. The embedding model's
 * identity is bound to the ciphertext as associated data, so a gallery made with another model does not
 * decrypt silently into wrong comparisons. Layout of the file: [IV length][IV][ciphertext + 16-byte tag].
 * Every change rewrites the file (new IV) through a temporary file and a rename.
 */
class SecureGallery(private val file: File, private val model: ModelInfo) {
    var gallery: TemplateGallery = TemplateGallery()
        private set

    /** Why the stored gallery could not be read (it is then set aside as *.unreadable), or null. */
    var loadError: String? = null
        private set

    init {
        if (file.isFile) {
            try {
                gallery = GalleryCodec.decode(decrypt(file.readBytes()), model).first
            } catch (e: Exception) {
                loadError = "stored gallery unreadable (${e.javaClass.simpleName}: ${e.message}); starting empty"
                file.renameTo(File(file.path + ".unreadable"))
            }
        }
    }

    @Synchronized
    fun enroll(name: String, embeddings: List<FloatArray>) {
        gallery.enroll(name, embeddings)
        save()
    }

    @Synchronized
    fun forget(name: String): Boolean = gallery.forget(name).also { if (it) save() }

    @Synchronized
    fun verify(name: String, embedding: FloatArray, threshold: Double): Match = gallery.verify(name, embedding, threshold)

    private fun save() {
        val tmp = File(file.path + ".tmp")
        tmp.writeBytes(encrypt(GalleryCodec.encode(gallery, model)))
        check(tmp.renameTo(file)) { "cannot replace $file" }
    }

    private fun encrypt(plain: ByteArray): ByteArray {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key()) // the Keystore picks a fresh random IV
        cipher.updateAAD(model.key.toByteArray())
        val body = cipher.doFinal(plain)
        val iv = cipher.iv
        return byteArrayOf(iv.size.toByte()) + iv + body
    }

    private fun decrypt(stored: ByteArray): ByteArray {
        val n = stored[0].toInt()
        require(n in 12..16 && stored.size > 1 + n + 16) { "not an encrypted gallery" }
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(128, stored, 1, n))
        cipher.updateAAD(model.key.toByteArray())
        return cipher.doFinal(stored, 1 + n, stored.size - 1 - n)
    }

    private fun key(): SecretKey {
        val store = KeyStore.getInstance(KEYSTORE).apply { load(null) }
        (store.getKey(ALIAS, null) as? SecretKey)?.let { return it }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, KEYSTORE)
        generator.init(
            KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .build(),
        )
        return generator.generateKey()
    }

    companion object {
        private const val KEYSTORE = "AndroidKeyStore"
        private const val ALIAS = "squeezerface-gallery"
        private const val TRANSFORMATION = "AES/GCM/NoPadding"
    }
}
