package io.squeezerface.core

import kotlin.math.abs
import org.junit.Assert.assertEquals
import org.junit.Test
import org.junit.runner.RunWith
import org.junit.runners.Parameterized

/**
 * The pure-math and pixel cases of the golden vectors (seeded random data through the real Python
 * functions): one test per case. Tolerances:
 * - similarity / alignment / crop matrices: 1e-9 absolute per entry (both sides in float64);
 * - detector decoding: scores 1e-6, points 1e-6 relative, boxes 1e-6 relative to |centre| + half (float32;
 *   exp may differ by an ulp, and x1 = centre - half cancels);
 * - faces after NMS: boxes and points 1e-3 px, scores 1e-6, same faces in the same order;
 * - NMS: identical kept indices; priors, templates, layouts and quantization: bit-identical;
 * - pixels (INTER_AREA resize, letterbox, bilinear warp, aligned and refiner crops): every value within
 *   1 level and at most 0.5 % of values differing (OpenCV's arithmetic is mirrored, with the warp kernel of
 *   the OpenCV version that made the vectors, so 0 is expected);
 * - template aggregation: 1e-6.
 */
@RunWith(Parameterized::class)
class SyntheticGoldenTest(private val kind: String, private val index: Int) {
    companion object {
        private val LISTS = listOf(
            "umeyama", "alignment", "priors", "decode", "nms", "faces_from_output", "letterbox", "resize_area",
            "warp", "align_face", "crop_face", "points_from_output", "quantize", "point_names", "far_keys",
            "aggregation",
        )

        @JvmStatic
        @Parameterized.Parameters(name = "{0}[{1}]")
        fun cases(): List<Array<Any>> {
            val s = Golden.synthetic
            val out = ArrayList<Array<Any>>()
            for (kind in LISTS) for (i in s.arr(kind).indices) out.add(arrayOf(kind, i))
            for (size in s.obj("template").keys) out.add(arrayOf("template", size.toInt()))
            for (i in s.obj("prepare_layouts").arr("cases").indices) out.add(arrayOf("prepare_layouts", i))
            return out
        }
    }

    private val case: Any? get() = Golden.synthetic.arr(kind)[index]

    @Test
    fun matchesPython() {
        when (kind) {
            "umeyama" -> Check.close(
                "umeyama matrix", case.arr("matrix").doubles(),
                Align.umeyama(case.arr("src").doubles(), case.arr("dst").doubles()), 1e-9,
            )
            "alignment" -> Check.close(
                "alignment matrix", case.arr("matrix").doubles(),
                Align.alignmentMatrix(case.arr("landmarks").floats(), case.num("size").toInt(), case.num("margin").toInt()), 1e-9,
            )
            "template" -> Check.exact(
                "template", Golden.synthetic.obj("template").arr(index.toString()).floats(), Align.template(index),
            )
            "priors" -> Check.exact("priors", Golden.f32(case.obj("grid")), Detect.priors(case.num("size").toInt()))
            "decode" -> {
                val d = Detect.decode(Golden.f32(case.obj("raw")), Detect.priors(case.num("size").toInt()))
                Check.close("decode scores", Golden.f32(case.obj("scores")), d.scores, 1e-6)
                // x1 = centre - half and x2 = centre + half cancel: scale by the operands' size, |centre| + half
                val boxes = Golden.f32(case.obj("boxes")).toDoubles()
                val operands = DoubleArray(boxes.size) { i -> (0 until 4).maxOf { k -> abs(boxes[i / 4 * 4 + k]) } }
                Check.close("decode boxes", boxes, d.boxes.toDoubles(), 1e-6, relative = true, scale = operands)
                Check.close("decode landmarks", Golden.f32(case.obj("landmarks")), d.landmarks, 1e-6, relative = true)
            }
            "nms" -> Check.equal(
                "nms kept indices", case.arr("keep").ints().toList(),
                Detect.nms(case.arr("boxes").floats(), case.arr("scores").floats(), case.num("iou")).toList(),
            )
            "faces_from_output" -> {
                val lb = case.obj("letterbox")
                val faces = Detect.facesFromOutput(
                    Golden.f32(case.obj("raw")), Detect.priors(case.num("size").toInt()),
                    Letterbox(lb.num("scale"), lb.num("pad_x"), lb.num("pad_y")),
                    case.num("score_threshold"), case.num("nms_iou"), case.num("image_h").toInt(),
                    case.num("image_w").toInt(), case.num("top_k").toInt(),
                )
                checkFaces("faces_from_output", case.arr("faces"), faces)
            }
            "letterbox" -> {
                val got = letterbox(Golden.image(case.obj("image")), case.num("size").toInt())
                Check.close(
                    "letterbox scale/pad", doubleArrayOf(case.num("scale"), case.num("pad_x"), case.num("pad_y")),
                    doubleArrayOf(got.box.scale, got.box.padX, got.box.padY), 0.0,
                )
                Check.pixels("letterbox canvas (synthetic)", Golden.image(case.obj("canvas")), got.canvas)
            }
            "resize_area" -> {
                val want = Golden.image(case.obj("out"))
                Check.pixels("resize INTER_AREA", want, Resample.resizeArea(Golden.image(case.obj("image")), want.width, want.height))
            }
            "warp" -> {
                val size = case.num("size").toInt()
                Check.pixels(
                    "warpAffine bilinear replicate", Golden.image(case.obj("out")),
                    Resample.warpAffine(Golden.image(case.obj("image")), case.arr("matrix").doubles(), size, size, Golden.warpKernel),
                )
            }
            "align_face" -> Check.pixels(
                "align_face crop (synthetic)", Golden.image(case.obj("aligned")),
                Align.alignFace(Golden.image(case.obj("image")), case.arr("landmarks").floats(), kernel = Golden.warpKernel),
            )
            "crop_face" -> {
                val got = Refine.cropFace(
                    Golden.image(case.obj("image")), case.arr("landmarks").floats(), case.num("size").toInt(), Golden.warpKernel,
                )
                Check.close("refiner crop matrix", case.arr("matrix").doubles(), got.matrix, 1e-9)
                Check.pixels("refiner crop (synthetic)", Golden.image(case.obj("crop")), got.image)
            }
            "points_from_output" -> Check.close(
                "refiner points_from_output", case.arr("points").doubles(),
                Refine.pointsFromOutput(case.arr("raw").floats(), case.arr("matrix").doubles(), case.num("size").toInt()).toDoubles(),
                1e-3,
            )
            "quantize" -> {
                val img = Golden.image(case.obj("image"))
                val prepared = InputSpec(img.height, img.width).prepare(img)
                Check.exact("InputSpec.prepare", Golden.f32(case.obj("prepared")), prepared)
                val info = TensorInfo(intArrayOf(1, img.height, img.width, 3), DType.of(case.str("dtype")), case.num("scale"), case.num("zero_point").toInt())
                Check.exact("quantize", Golden.bytes(case.obj("quantized")), Quant.quantize(prepared, info))
                Check.exact("dequantize", Golden.f32(case.obj("dequantized")), Quant.dequantize(Golden.bytes(case.obj("raw")), info))
            }
            "prepare_layouts" -> {
                val p = Golden.synthetic.obj("prepare_layouts")
                val c = p.arr("cases")[index]
                val img = Golden.image(p.obj("image"))
                val spec = InputSpec(
                    img.height, img.width, ChannelOrder.valueOf(c.str("channel_order")), Layout.valueOf(c.str("layout")),
                    c.num("mean"), c.num("scale"),
                )
                Check.exact("InputSpec.prepare layouts", Golden.f32(c.obj("out")), spec.prepare(img))
            }
            "point_names" -> Check.equal("point_name", case.str("name"), OperatingPoints.name(case.str("input")))
            "far_keys" -> Check.equal("far_key", case.str("key"), OperatingPoints.farKey(case.num("far")))
            "aggregation" -> {
                val dim = case.arr("probe").size
                val flat = case.arr("templates").floats()
                val templates = List(flat.size / dim) { r -> flat.copyOfRange(r * dim, (r + 1) * dim) }
                val id = Identity("x", templates)
                val probe = case.arr("probe").floats()
                Check.close(
                    "aggregation mean/best (synthetic)", doubleArrayOf(case.num("mean"), case.num("best")),
                    doubleArrayOf(id.score(probe, Aggregate.MEAN), id.score(probe, Aggregate.BEST)), 1e-6,
                )
            }
            else -> error("unknown case kind $kind")
        }
    }
}

/** Same faces in the same order: boxes and points within 1e-3 px, scores within 1e-6. */
fun checkFaces(what: String, expected: List<Any?>, actual: List<Face>) {
    assertEquals("$what: number of faces", expected.size, actual.size)
    for ((i, e) in expected.withIndex()) {
        Check.close("$what boxes", e.arr("box").doubles(), actual[i].box.toDoubles(), 1e-3)
        Check.close("$what landmarks", e.arr("landmarks").doubles(), actual[i].landmarks.toDoubles(), 1e-3)
        Check.close("$what scores", doubleArrayOf(e.num("score")), doubleArrayOf(actual[i].score.toDouble()), 1e-6)
    }
}
