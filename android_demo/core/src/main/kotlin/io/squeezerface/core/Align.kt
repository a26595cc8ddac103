package io.squeezerface.core

import kotlin.math.hypot

/**
 * Face alignment, as `squeezerface.align`: the 5-point ArcFace 112x112 template, the Umeyama similarity
 * fit of landmarks onto it, and the warp. Matrices are 2x3 row-major DoubleArrays (m00 m01 m02 m10 m11 m12)
 * taking image coordinates to crop coordinates, like those passed to `cv2.warpAffine`.
 */
object Align {
    const val ALIGNED_SIZE = 112

    /** ARCFACE_TEMPLATE_112, float32: left eye, right eye, nose tip, left and right mouth corners (x, y). */
    val TEMPLATE_112 = floatArrayOf(
        38.2946f, 51.6963f,
        73.5318f, 51.5014f,
        56.0252f, 71.7366f,
        41.5493f, 92.3655f,
        70.7299f, 92.2041f,
    )

    /** The template scaled to a `size` crop, in float32 as numpy computes `TEMPLATE * (size / 112)`. */
    fun template(size: Int = ALIGNED_SIZE): FloatArray {
        val factor = (size.toDouble() / ALIGNED_SIZE).toFloat()
        return FloatArray(10) { TEMPLATE_112[it] * factor }
    }

    /**
     * Least-squares similarity (rotation, uniform scale, translation) mapping `src` onto `dst` (n >= 2 points,
     * interleaved x, y), without reflection: Umeyama (1991). In 2-D the SVD of the 2x2 cross-covariance with
     * the reflection guard has a closed form, used here: with C = cov(dst, src), the best proper rotation has
     * angle atan2(C10 - C01, C00 + C11) and tr(D S) = hypot(C00 + C11, C10 - C01); the scale is that over the
     * source variance (1 when the source points coincide, as in the Python code).
     */
    fun umeyama(src: DoubleArray, dst: DoubleArray): DoubleArray {
        require(src.size == dst.size && src.size % 2 == 0 && src.size >= 4) {
            "need two point sets of equal size with n >= 2 points, got ${src.size / 2} and ${dst.size / 2}"
        }
        val n = src.size / 2
        var msx = 0.0; var msy = 0.0; var mdx = 0.0; var mdy = 0.0
        for (i in 0 until n) { msx += src[2 * i]; msy += src[2 * i + 1]; mdx += dst[2 * i]; mdy += dst[2 * i + 1] }
        msx /= n; msy /= n; mdx /= n; mdy /= n
        var c00 = 0.0; var c01 = 0.0; var c10 = 0.0; var c11 = 0.0; var varS = 0.0
        for (i in 0 until n) {
            val sx = src[2 * i] - msx; val sy = src[2 * i + 1] - msy
            val dx = dst[2 * i] - mdx; val dy = dst[2 * i + 1] - mdy
            c00 += dx * sx; c01 += dx * sy; c10 += dy * sx; c11 += dy * sy
            varS += sx * sx + sy * sy
        }
        c00 /= n; c01 /= n; c10 /= n; c11 /= n; varS /= n
        val a = c00 + c11
        val b = c10 - c01
        val r = hypot(a, b)
        val cos = if (r > 0) a / r else 1.0
        val sin = if (r > 0) b / r else 0.0
        val scale = if (varS > 0) r / varS else 1.0
        val m00 = scale * cos; val m01 = -scale * sin
        val m10 = scale * sin; val m11 = scale * cos
        return doubleArrayOf(m00, m01, mdx - (m00 * msx + m01 * msy), m10, m11, mdy - (m10 * msx + m11 * msy))
    }

    /** 2x3 matrix from image coordinates to the aligned crop (template scaled to `size`, plus `margin`). */
    fun alignmentMatrix(landmarks: FloatArray, size: Int = ALIGNED_SIZE, margin: Int = 0): DoubleArray {
        require(landmarks.size == 10) { "5 landmarks (10 values) expected, got ${landmarks.size}" }
        val t = template(size)
        val dst = DoubleArray(10) { (t[it] + margin.toFloat()).toDouble() }
        return umeyama(DoubleArray(10) { landmarks[it].toDouble() }, dst)
    }

    /** The (size + 2 margin) square crop with `landmarks` on the template; edges replicated. */
    fun alignFace(
        image: RgbImage,
        landmarks: FloatArray,
        size: Int = ALIGNED_SIZE,
        margin: Int = 0,
        kernel: WarpKernel = WarpKernel.DEFAULT,
    ): RgbImage {
        val side = size + 2 * margin
        return Resample.warpAffine(image, alignmentMatrix(landmarks, size, margin), side, side, kernel)
    }

    /** Inverse of a 2x3 similarity/affine matrix (analytic, in double). */
    fun invert(m: DoubleArray): DoubleArray {
        val det = m[0] * m[4] - m[1] * m[3]
        val i00 = m[4] / det; val i01 = -m[1] / det
        val i10 = -m[3] / det; val i11 = m[0] / det
        return doubleArrayOf(i00, i01, -(i00 * m[2] + i01 * m[5]), i10, i11, -(i10 * m[2] + i11 * m[5]))
    }
}

/** The landmark refiner's pure parts, as `squeezerface.landmarks`: its crop and the decoding of its output. */
object Refine {
    /** Side of the refiner's input: the 112 template scaled to 64 pixels. */
    const val CROP = 64

    /** Outputs are point offsets from the template in units of 8 crop pixels. */
    const val OFFSET_UNIT = 8.0

    class Crop(val image: RgbImage, val matrix: DoubleArray)

    /** The refiner's input cut from the image by rough 5 points: warped at 2x size bilinearly, then halved
     * by pixel-area averaging; with the 2x3 matrix from image to crop (halving maps x to (x - 0.5) / 2). */
    fun cropFace(image: RgbImage, landmarks: FloatArray, size: Int = CROP, kernel: WarpKernel = WarpKernel.DEFAULT): Crop {
        val big = Align.alignmentMatrix(landmarks, 2 * size)
        val warped = Resample.warpAffine(image, big, 2 * size, 2 * size, kernel)
        val crop = Resample.resizeArea(warped, size, size)
        val m = DoubleArray(6) { big[it] / 2 }
        m[2] -= 0.25
        m[5] -= 0.25
        return Crop(crop, m)
    }

    /** Network output (10 values) to the 5 refined points in image coordinates (float32 like the runtime). */
    fun pointsFromOutput(raw: FloatArray, matrix: DoubleArray, size: Int = CROP): FloatArray {
        require(raw.size == 10) { "the refiner outputs 10 values, got ${raw.size}" }
        val t = template(size)
        val inv = Align.invert(matrix)
        return FloatArray(10) { k ->
            val i = k / 2
            val x = t[2 * i].toDouble() + raw[2 * i].toDouble() * OFFSET_UNIT
            val y = t[2 * i + 1].toDouble() + raw[2 * i + 1].toDouble() * OFFSET_UNIT
            (if (k % 2 == 0) inv[0] * x + inv[1] * y + inv[2] else inv[3] * x + inv[4] * y + inv[5]).toFloat()
        }
    }

    private fun template(size: Int) = Align.template(size)
}
