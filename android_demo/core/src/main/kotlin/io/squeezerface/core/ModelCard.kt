package io.squeezerface.core

import java.util.Locale

class OperatingPointException(message: String) : IllegalArgumentException(message)

/** One calibrated cosine threshold: accept a pair when cosine > threshold. */
data class OperatingPoint(
    val name: String,
    val threshold: Double,
    val targetFar: Double?,
    val far: Double,
    val tar: Double,
    val genuinePairs: Int,
    val impostorPairs: Int,
)

/** Detector settings from the card's `training.detection`: score threshold, NMS IoU, the landmark refiner's
 * file and how many refinement passes to make (each re-cuts the crop with the previous pass's points). */
data class DetectionSettings(
    val score: Double = 0.5,
    val nmsIou: Double = 0.4,
    val refiner: String? = null,
    val refinerPasses: Int = 1,
)

/**
 * The parts of a model card (`MODEL.json` beside each shipped model; see `squeezerface.modelcard`) the app
 * uses: identity, input preprocessing, detection settings and calibrated operating points.
 */
class ModelCard(
    val name: String,
    val version: String,
    val file: String,
    val format: String,
    val precision: String,
    val sha256: String,
    val embeddingSize: Int,
    val input: InputSpec,
    val licence: String,
    val detection: DetectionSettings?,
    val points: List<OperatingPoint>,
    val calibrationSource: String?,
) {
    /** Cosine threshold at an operating point: "eer", or a FAR as "far_1e-03", "1e-3" or "0.001". */
    fun threshold(point: String = "far_1e-03"): Double = point(point).threshold

    fun point(point: String): OperatingPoint {
        if (points.isEmpty()) throw OperatingPointException("card of $file has no calibrated thresholds")
        val key = OperatingPoints.name(point)
        return points.firstOrNull { it.name == key } ?: throw OperatingPointException(
            "no operating point '$point' in this card; it has: ${points.joinToString { it.name }}"
        )
    }

    companion object {
        fun parse(text: String): ModelCard {
            val d = Json.parse(text)
            val schema = d.numOrNull("schema")?.toInt() ?: 1
            require(schema == 1) { "model card schema $schema is not supported (expected 1)" }
            val inp = d.obj("input")
            val size = inp.arr("size").ints()
            val spec = InputSpec(
                height = size[0],
                width = size[1],
                channelOrder = ChannelOrder.valueOf(inp.strOrNull("channel_order") ?: "RGB"),
                layout = Layout.valueOf(inp.strOrNull("layout") ?: "NCHW"),
                mean = inp.numOrNull("mean") ?: 127.5,
                scale = inp.numOrNull("scale") ?: (1.0 / 128.0),
            )
            val det = d.objOrNull("training")?.objOrNull("detection")?.let {
                DetectionSettings(
                    score = it.numOrNull("score") ?: 0.5,
                    nmsIou = it.numOrNull("nms_iou") ?: 0.4,
                    refiner = it.strOrNull("refiner"),
                    refinerPasses = it.numOrNull("refiner_passes")?.toInt() ?: 1,
                )
            }
            val cal = d.objOrNull("calibration")
            val points = cal?.arr("points")?.map { p ->
                OperatingPoint(
                    name = p.str("name"),
                    threshold = p.num("threshold"),
                    targetFar = p.numOrNull("target_far"),
                    far = p.num("far"),
                    tar = p.num("tar"),
                    genuinePairs = p.num("genuine_pairs").toInt(),
                    impostorPairs = p.num("impostor_pairs").toInt(),
                )
            } ?: emptyList()
            return ModelCard(
                name = d.str("name"),
                version = d.str("version"),
                file = d.str("file"),
                format = d.str("format"),
                precision = d.str("precision"),
                sha256 = d.str("sha256"),
                embeddingSize = d.num("embedding_size").toInt(),
                input = spec,
                licence = d.strOrNull("licence") ?: "",
                detection = det,
                points = points,
                calibrationSource = cal?.strOrNull("source"),
            )
        }
    }
}

/** Operating-point names as `squeezerface.modelcard.point_name` and `metrics.far_key` write them. */
object OperatingPoints {
    /** "eer", or "far_" + farKey(value) for "far_1e-3", "far1e-3", "1e-3", "0.001", ... */
    fun name(point: String): String {
        val lower = point.lowercase(Locale.ROOT)
        if (lower == "eer") return "eer"
        val text = lower.removePrefix("far_").removePrefix("far")
        val value = text.trim().toDoubleOrNull()
            ?: throw OperatingPointException("not an operating point: '$point' (use 'eer' or a FAR such as 'far_1e-3')")
        return "far_" + farKey(value)
    }

    fun name(far: Double): String = "far_" + farKey(far)

    /** numpy.format_float_scientific(far, trim="-", exp_digits=2): the shortest digits that read back as the
     * same double, e.g. "1e-03", "1.5e-03", "2.5e-06". */
    fun farKey(far: Double): String {
        for (p in 0..16) {
            val s = String.format(Locale.ROOT, "%.${p}e", far)
            if (s.toDouble() == far) return trim(s)
        }
        return trim(String.format(Locale.ROOT, "%.16e", far))
    }

    private fun trim(s: String): String {
        val e = s.indexOf('e')
        var mantissa = s.substring(0, e)
        if ('.' in mantissa) mantissa = mantissa.trimEnd('0').trimEnd('.')
        val exp = s.substring(e + 1)
        val sign = if (exp.startsWith("-")) "-" else "+"
        val digits = exp.trimStart('+', '-').trimStart('0').padStart(2, '0')
        return "${mantissa}e$sign$digits"
    }
}
