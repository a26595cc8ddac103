package io.squeezerface.demo

import android.content.Context
import io.squeezerface.core.FacePipeline
import io.squeezerface.core.Json
import io.squeezerface.core.ModelCard
import io.squeezerface.core.ModelInfo
import io.squeezerface.core.str
import io.squeezerface.core.strOrNull
import java.security.MessageDigest

/**
 * The three shipped models (detector, landmark refiner, embedder) loaded from the APK's assets, as
 * `android_demo/scripts/copy_models.py` put them there: `models.json` names the files, each `MODEL.json`
 * card beside its model gives preprocessing, detection settings and calibrated thresholds. Each file is
 * checked against its card's SHA-256 before use, as the Python runtime's `load_card(verify=True)` does.
 */
class FaceEngine private constructor(
    val pipeline: FacePipeline,
    val model: ModelInfo,
    val threads: Int,
    private val models: List<LiteRtModel>,
) : AutoCloseable {
    override fun close() = models.forEach { it.close() }

    companion object {
        fun load(context: Context, threads: Int): FaceEngine {
            val manifest = Json.parse(asset(context, "models.json").decodeToString())
            val detectorCard = card(context, manifest.str("detector"))
            val embedderCard = card(context, manifest.str("embedder"))
            val refinerName = detectorCard.detection?.refiner
            val refinerCard = refinerName?.let { card(context, it) }
            val opened = ArrayList<LiteRtModel>()
            try {
                fun open(card: ModelCard) = LiteRtModel(LiteRtModel.mapAsset(context, card.file), threads).also { opened.add(it) }
                val detector = open(detectorCard)
                val refiner = refinerCard?.let { open(it) }
                val embedder = open(embedderCard)
                val pipeline = FacePipeline(
                    detector, detectorCard, refiner, refinerCard, embedder, embedderCard,
                    operatingPoint = manifest.strOrNull("operating_point") ?: "far_1e-03",
                )
                return FaceEngine(pipeline, ModelInfo.of(embedderCard), threads, opened)
            } catch (e: Exception) {
                opened.forEach { it.close() }
                throw e
            }
        }

        private fun asset(context: Context, name: String): ByteArray = context.assets.open(name).use { it.readBytes() }

        /** The card of a model, after checking the model file's SHA-256 against it. */
        private fun card(context: Context, file: String): ModelCard {
            val card = ModelCard.parse(asset(context, "$file.json").decodeToString())
            val digest = MessageDigest.getInstance("SHA-256")
            context.assets.open(file).use { s ->
                val buf = ByteArray(1 shl 16)
                while (true) {
                    val n = s.read(buf)
                    if (n < 0) break
                    digest.update(buf, 0, n)
                }
            }
            val sha = digest.digest().joinToString("") { "%02x".format(it) }
            check(sha == card.sha256) {
                "$file does not match its card (SHA-256 ${sha.take(12)}... != ${card.sha256.take(12)}...): " +
                    "re-run android_demo/scripts/copy_models.py"
            }
            return card
        }
    }
}
