package io.squeezerface.core

import kotlin.math.exp
import kotlin.math.max
import kotlin.math.min

/**
 * One detected face, in the coordinates of the image given to the detector.
 * box: x1, y1, x2, y2; landmarks: 5 (x, y) pairs in the order left eye, right eye, nose, mouth left, mouth
 * right ("left" as seen in the image); score: the detector's confidence.
 */
class Face(val box: FloatArray, val landmarks: FloatArray, val score: Float) {
    init {
        require(box.size == 4) { "box has 4 values, got ${box.size}" }
        require(landmarks.size == 10) { "5 landmarks (10 values) expected, got ${landmarks.size}" }
    }

    val width: Double get() = box[2].toDouble() - box[0]
    val height: Double get() = box[3].toDouble() - box[1]
    val area: Double get() = max(width, 0.0) * max(height, 0.0)

    fun withLandmarks(points: FloatArray) = Face(box, points, score)
}

/** Detector output decoding, as `squeezerface.detect`: location grid, decode, NMS, faces. All float32. */
object Detect {
    val STRIDES = intArrayOf(8, 16, 32)

    /** (A, 3) grid of (cx, cy, stride), flattened, in the network's output order. */
    fun priors(size: Int, strides: IntArray = STRIDES): FloatArray {
        val out = ArrayList<Float>()
        for (s in strides) {
            val n = (size + s - 1) / s
            for (y in 0 until n) for (x in 0 until n) {
                out.add(((x + 0.5) * s).toFloat()); out.add(((y + 0.5) * s).toFloat()); out.add(s.toFloat())
            }
        }
        return out.toFloatArray()
    }

    class Decoded(val scores: FloatArray, val boxes: FloatArray, val landmarks: FloatArray)

    /** Raw (A, 15) outputs to scores (A), boxes (A, 4) x1y1x2y2 and landmarks (A, 10), input space. */
    fun decode(raw: FloatArray, grid: FloatArray): Decoded {
        val a = grid.size / 3
        require(raw.size == a * 15) { "raw output should be ($a, 15), got ${raw.size} values" }
        val scores = FloatArray(a)
        val boxes = FloatArray(a * 4)
        val lms = FloatArray(a * 10)
        for (i in 0 until a) {
            val cx = grid[3 * i]; val cy = grid[3 * i + 1]; val s = grid[3 * i + 2]
            val r = 15 * i
            scores[i] = 1.0f / (1.0f + exp(-raw[r].toDouble()).toFloat())
            val ccx = cx + raw[r + 1] * s
            val ccy = cy + raw[r + 2] * s
            val hw = exp(raw[r + 3].coerceIn(-10f, 10f).toDouble()).toFloat() * s / 2f
            val hh = exp(raw[r + 4].coerceIn(-10f, 10f).toDouble()).toFloat() * s / 2f
            boxes[4 * i] = ccx - hw; boxes[4 * i + 1] = ccy - hh
            boxes[4 * i + 2] = ccx + hw; boxes[4 * i + 3] = ccy + hh
            for (k in 0 until 5) {
                lms[10 * i + 2 * k] = cx + raw[r + 5 + 2 * k] * s
                lms[10 * i + 2 * k + 1] = cy + raw[r + 6 + 2 * k] * s
            }
        }
        return Decoded(scores, boxes, lms)
    }

    /** Indices (into `scores`) sorted by score descending, ties by index: numpy's stable argsort(-scores). */
    fun order(scores: FloatArray, indices: IntArray = IntArray(scores.size) { it }): IntArray =
        indices.sortedWith(compareByDescending<Int> { scores[it] }.thenBy { it }).toIntArray()

    /** Greedy NMS over boxes (n, 4) flattened: indices kept, highest score first; a box is dropped when its
     * IoU with a kept one is above `iou` (float32 arithmetic, as the numpy code). */
    fun nms(boxes: FloatArray, scores: FloatArray, iou: Double): IntArray {
        val n = scores.size
        require(boxes.size == 4 * n) { "boxes should be ($n, 4)" }
        val thr = iou.toFloat()
        val areas = FloatArray(n) {
            max(boxes[4 * it + 2] - boxes[4 * it], 0f) * max(boxes[4 * it + 3] - boxes[4 * it + 1], 0f)
        }
        var rest = order(scores).toList()
        val keep = ArrayList<Int>()
        while (rest.isNotEmpty()) {
            val i = rest[0]
            keep.add(i)
            rest = rest.drop(1).filter { j ->
                val w = max(0f, min(boxes[4 * i + 2], boxes[4 * j + 2]) - max(boxes[4 * i], boxes[4 * j]))
                val h = max(0f, min(boxes[4 * i + 3], boxes[4 * j + 3]) - max(boxes[4 * i + 1], boxes[4 * j + 1]))
                val inter = w * h
                val overlap = inter / max(areas[i] + areas[j] - inter, 1e-9f)
                overlap <= thr
            }
        }
        return keep.toIntArray()
    }

    /** One image's raw output to faces in the image's own coordinates, best first (`faces_from_output`). */
    fun facesFromOutput(
        raw: FloatArray,
        grid: FloatArray,
        box: Letterbox,
        scoreThreshold: Double,
        nmsIou: Double,
        imageHeight: Int,
        imageWidth: Int,
        topK: Int = 50,
    ): List<Face> {
        val d = decode(raw, grid)
        val thr = scoreThreshold.toFloat()
        val above = d.scores.indices.filter { d.scores[it] >= thr }.toIntArray()
        if (above.isEmpty()) return emptyList()
        val idx = order(d.scores, above).take(topK * 4).toIntArray()
        val subBoxes = FloatArray(idx.size * 4) { d.boxes[4 * idx[it / 4] + it % 4] }
        val subScores = FloatArray(idx.size) { d.scores[idx[it]] }
        val kept = nms(subBoxes, subScores, nmsIou).take(topK).map { idx[it] }
        val w = imageWidth.toFloat()
        val h = imageHeight.toFloat()
        return kept.map { i ->
            val b = FloatArray(4) { k ->
                val v = d.boxes[4 * i + k]
                val img = if (k % 2 == 0) box.toImageX(v) else box.toImageY(v)
                img.coerceIn(0f, if (k % 2 == 0) w else h)
            }
            val lm = FloatArray(10) { k ->
                val v = d.landmarks[10 * i + k]
                if (k % 2 == 0) box.toImageX(v) else box.toImageY(v)
            }
            Face(b, lm, d.scores[i])
        }
    }

    /** The subject of a photo with several faces: the largest box (the first of equals), as the runtime's
     * default face policy "largest". */
    fun largest(faces: List<Face>): Face? = faces.maxByOrNull { it.area }
}
