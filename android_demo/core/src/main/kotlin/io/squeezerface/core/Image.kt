package io.squeezerface.core

import kotlin.math.abs
import kotlin.math.ceil
import kotlin.math.floor
import kotlin.math.max
import kotlin.math.min

/**
 * An RGB uint8 image, rows top to bottom, pixels interleaved (HxWx3, like the Python runtime's numpy
 * arrays). The app fills one from a camera frame; everything downstream is plain arithmetic on it.
 */
class RgbImage(val width: Int, val height: Int, val data: ByteArray = ByteArray(width * height * 3)) {
    init {
        require(width > 0 && height > 0) { "image must be at least 1x1, got ${width}x$height" }
        require(data.size == width * height * 3) { "expected ${width * height * 3} bytes, got ${data.size}" }
    }

    /** Channel value 0..255 at (x, y). */
    fun at(x: Int, y: Int, c: Int): Int = data[(y * width + x) * 3 + c].toInt() and 0xFF

    fun copy(): RgbImage = RgbImage(width, height, data.copyOf())

    companion object {
        /** From packed ARGB ints (Android `Bitmap.getPixels`): alpha dropped, RGB kept. */
        fun fromArgb(width: Int, height: Int, argb: IntArray): RgbImage {
            require(argb.size == width * height) { "expected ${width * height} pixels, got ${argb.size}" }
            val out = ByteArray(width * height * 3)
            for (i in argb.indices) {
                val p = argb[i]
                out[i * 3] = (p shr 16).toByte()
                out[i * 3 + 1] = (p shr 8).toByte()
                out[i * 3 + 2] = p.toByte()
            }
            return RgbImage(width, height, out)
        }
    }
}

/** OpenCV's saturate_cast<uchar>(float): round half to even (cvRound), then clamp to 0..255. */
internal fun saturateU8(v: Float): Int {
    val r = Math.rint(v.toDouble())
    return if (r <= 0.0) 0 else if (r >= 255.0) 255 else r.toInt()
}

/** fma(a, b, c) in float32 as the SIMD kernels compute it; the float product is exact in double, so this
 * differs from a true fused multiply-add only when the double sum rounds onto a float halfway point. */
internal fun fmaF(a: Float, b: Float, c: Float): Float = (a.toDouble() * b.toDouble() + c.toDouble()).toFloat()

/**
 * Image resampling, mirroring what the Python runtime calls in OpenCV (x86-64 builds of the reference):
 * `cv2.resize(INTER_AREA)` for shrinking and `cv2.warpAffine(INTER_LINEAR, BORDER_REPLICATE)`.
 */
object Resample {
    /**
     * `cv2.resize(src, (dw, dh), interpolation=INTER_AREA)` for dw <= width and dh <= height. Integer
     * factors take OpenCV's fast path (block averages: 2x2 rounds half up as its SIMD path does, other
     * factors sum * (1/area) rounded half to even); other factors use its area-weight tables in float32.
     */
    fun resizeArea(src: RgbImage, dw: Int, dh: Int): RgbImage {
        require(dw in 1..src.width && dh in 1..src.height) {
            "resizeArea shrinks only: ${src.width}x${src.height} -> ${dw}x$dh"
        }
        if (dw == src.width && dh == src.height) return src.copy()
        val scaleX = 1.0 / (dw.toDouble() / src.width)
        val scaleY = 1.0 / (dh.toDouble() / src.height)
        val ix = Math.rint(scaleX).toInt()
        val iy = Math.rint(scaleY).toInt()
        val eps = Math.ulp(1.0) // DBL_EPSILON
        return if (abs(scaleX - ix) < eps && abs(scaleY - iy) < eps) areaFast(src, dw, dh, ix, iy)
        else areaGeneral(src, dw, dh, scaleX, scaleY)
    }

    private fun areaFast(src: RgbImage, dw: Int, dh: Int, sx: Int, sy: Int): RgbImage {
        val out = RgbImage(dw, dh)
        val s = src.data
        val scale = 1.0f / (sx * sy)
        for (y in 0 until dh) for (x in 0 until dw) for (c in 0 until 3) {
            var sum = 0
            for (j in 0 until sy) for (i in 0 until sx) {
                sum += s[((y * sy + j) * src.width + x * sx + i) * 3 + c].toInt() and 0xFF
            }
            val v = if (sx == 2 && sy == 2) (sum + 2) shr 2 else saturateU8(sum * scale)
            out.data[(y * dw + x) * 3 + c] = v.toByte()
        }
        return out
    }

    private class Tab(val di: IntArray, val si: IntArray, val alpha: FloatArray)

    /** OpenCV's computeResizeAreaTab: (destination, source, weight) triples along one axis. */
    private fun areaTab(ssize: Int, dsize: Int, scale: Double): Tab {
        val di = ArrayList<Int>(); val si = ArrayList<Int>(); val al = ArrayList<Float>()
        for (dx in 0 until dsize) {
            val fsx1 = dx * scale
            val fsx2 = fsx1 + scale
            val cellWidth = min(scale, ssize - fsx1)
            var sx1 = ceil(fsx1).toInt()
            var sx2 = floor(fsx2).toInt()
            sx2 = min(sx2, ssize - 1)
            sx1 = min(sx1, sx2)
            if (sx1 - fsx1 > 1e-3) { di.add(dx); si.add(sx1 - 1); al.add(((sx1 - fsx1) / cellWidth).toFloat()) }
            for (sx in sx1 until sx2) { di.add(dx); si.add(sx); al.add((1.0 / cellWidth).toFloat()) }
            if (fsx2 - sx2 > 1e-3) {
                di.add(dx); si.add(sx2); al.add((min(min(fsx2 - sx2, 1.0), cellWidth) / cellWidth).toFloat())
            }
        }
        return Tab(di.toIntArray(), si.toIntArray(), al.toFloatArray())
    }

    private fun areaGeneral(src: RgbImage, dw: Int, dh: Int, scaleX: Double, scaleY: Double): RgbImage {
        val xt = areaTab(src.width, dw, scaleX)
        val yt = areaTab(src.height, dh, scaleY)
        val out = RgbImage(dw, dh)
        val n = dw * 3
        val buf = FloatArray(n)
        val sum = FloatArray(n)
        val s = src.data
        var prev = yt.di[0]
        fun store(row: Int) {
            for (k in 0 until n) out.data[row * n + k] = saturateU8(sum[k]).toByte()
        }
        for (j in yt.di.indices) {
            val beta = yt.alpha[j]
            val dy = yt.di[j]
            val rowBase = yt.si[j] * src.width * 3
            buf.fill(0f)
            for (k in xt.di.indices) {
                val d = xt.di[k] * 3
                val sp = rowBase + xt.si[k] * 3
                val a = xt.alpha[k]
                for (c in 0 until 3) buf[d + c] = buf[d + c] + (s[sp + c].toInt() and 0xFF) * a
            }
            if (dy != prev) {
                store(prev)
                for (k in 0 until n) sum[k] = beta * buf[k]
                prev = dy
            } else {
                for (k in 0 until n) sum[k] = sum[k] + beta * buf[k]
            }
        }
        store(prev)
        return out
    }

    /** OpenCV's inversion of a forward 2x3 affine matrix (row-major m00 m01 m02 m10 m11 m12). */
    fun invertAffine(m: DoubleArray): DoubleArray {
        require(m.size == 6) { "a 2x3 matrix has 6 entries, got ${m.size}" }
        var d = m[0] * m[4] - m[1] * m[3]
        d = if (d != 0.0) 1.0 / d else 0.0
        val a11 = m[4] * d
        val a22 = m[0] * d
        val a12 = m[1] * -d
        val a21 = m[3] * -d
        val b1 = -a11 * m[2] - a12 * m[5]
        val b2 = -a21 * m[2] - a22 * m[5]
        return doubleArrayOf(a11, a12, b1, a21, a22, b2)
    }

    /**
     * `cv2.warpAffine(src, m, (width, height), flags=INTER_LINEAR, borderMode=BORDER_REPLICATE)`: each
     * output pixel samples the source bilinearly at the inverse-mapped point; taps outside the image repeat
     * the edge pixels. `kernel` picks which OpenCV's arithmetic to reproduce (see `WarpKernel`).
     */
    fun warpAffine(
        src: RgbImage,
        m: DoubleArray,
        width: Int,
        height: Int,
        kernel: WarpKernel = WarpKernel.DEFAULT,
    ): RgbImage = when (kernel) {
        WarpKernel.FLOAT32 -> warpFloat(src, invertAffine(m), width, height)
        WarpKernel.FIXED_POINT -> warpFixed(src, invertAffine(m), width, height)
    }

    /** OpenCV 5's float32 kernel: coordinates fma(M0, x, y*M1 + M2) in float32, weights from the float
     * fraction, lerps as fma, result rounded half to even. */
    private fun warpFloat(src: RgbImage, inv: DoubleArray, width: Int, height: Int): RgbImage {
        val f = FloatArray(6) { inv[it].toFloat() }
        val out = RgbImage(width, height)
        val w = src.width
        val h = src.height
        val s = src.data
        for (y in 0 until height) {
            val yf = y.toFloat()
            val mx = yf * f[1] + f[2]
            val my = yf * f[4] + f[5]
            for (x in 0 until width) {
                val xf = x.toFloat()
                val sx = fmaF(f[0], xf, mx)
                val sy = fmaF(f[3], xf, my)
                val ix = floor(sx).toInt()
                val iy = floor(sy).toInt()
                val ax = sx - ix.toFloat()
                val ay = sy - iy.toFloat()
                val x0 = min(max(ix, 0), w - 1)
                val x1 = min(max(ix + 1, 0), w - 1)
                val y0 = min(max(iy, 0), h - 1)
                val y1 = min(max(iy + 1, 0), h - 1)
                val o = (y * width + x) * 3
                for (c in 0 until 3) {
                    val p00 = (s[(y0 * w + x0) * 3 + c].toInt() and 0xFF).toFloat()
                    val p01 = (s[(y0 * w + x1) * 3 + c].toInt() and 0xFF).toFloat()
                    val p10 = (s[(y1 * w + x0) * 3 + c].toInt() and 0xFF).toFloat()
                    val p11 = (s[(y1 * w + x1) * 3 + c].toInt() and 0xFF).toFloat()
                    val v0 = fmaF(ax, p01 - p00, p00)
                    val v1 = fmaF(ax, p11 - p10, p10)
                    out.data[o + c] = saturateU8(fmaF(ay, v1 - v0, v0)).toByte()
                }
            }
        }
        return out
    }

    /** OpenCV 4's fixed-point kernel: source coordinates in 1/1024 then 1/32 pixel (rounded half to even),
     * 5-bit fractions, integer weights (32 - fx)(32 - fy)32 ... summing to 2^15, result (sum + 2^14) >> 15. */
    private fun warpFixed(src: RgbImage, inv: DoubleArray, width: Int, height: Int): RgbImage {
        val abScale = 1024.0
        val roundDelta = 16 // AB_SCALE / INTER_TAB_SIZE / 2
        val adelta = IntArray(width) { Math.rint(inv[0] * it * abScale).toInt() }
        val bdelta = IntArray(width) { Math.rint(inv[3] * it * abScale).toInt() }
        val out = RgbImage(width, height)
        val w = src.width
        val h = src.height
        val s = src.data
        for (y in 0 until height) {
            val x0base = Math.rint((inv[1] * y + inv[2]) * abScale).toInt() + roundDelta
            val y0base = Math.rint((inv[4] * y + inv[5]) * abScale).toInt() + roundDelta
            for (x in 0 until width) {
                val xx = (x0base + adelta[x]) shr 5
                val yy = (y0base + bdelta[x]) shr 5
                val ix = xx shr 5
                val iy = yy shr 5
                val fx = xx and 31
                val fy = yy and 31
                val w00 = (32 - fx) * (32 - fy) * 32
                val w01 = fx * (32 - fy) * 32
                val w10 = (32 - fx) * fy * 32
                val w11 = fx * fy * 32
                val x0 = min(max(ix, 0), w - 1)
                val x1 = min(max(ix + 1, 0), w - 1)
                val y0 = min(max(iy, 0), h - 1)
                val y1 = min(max(iy + 1, 0), h - 1)
                val o = (y * width + x) * 3
                for (c in 0 until 3) {
                    val v = (s[(y0 * w + x0) * 3 + c].toInt() and 0xFF) * w00 +
                        (s[(y0 * w + x1) * 3 + c].toInt() and 0xFF) * w01 +
                        (s[(y1 * w + x0) * 3 + c].toInt() and 0xFF) * w10 +
                        (s[(y1 * w + x1) * 3 + c].toInt() and 0xFF) * w11
                    out.data[o + c] = min(max((v + (1 shl 14)) shr 15, 0), 255).toByte()
                }
            }
        }
        return out
    }
}

/**
 * Which OpenCV's bilinear `warpAffine` arithmetic to reproduce. The two differ by one level on about 13 % of
 * values; either is fine for the models, but the golden tests reproduce the Python runtime's crops exactly,
 * so they pick the kernel of the OpenCV that made the vectors.
 * - FLOAT32: OpenCV 5.x (the version `pip install squeezerface` resolves today, and the app's default);
 * - FIXED_POINT: OpenCV 4.x (4.8 to 4.12 checked: 5-bit fixed-point interpolation tables).
 */
enum class WarpKernel {
    FLOAT32, FIXED_POINT;

    companion object {
        val DEFAULT = FLOAT32

        /** The kernel of an OpenCV version string such as "5.0.0" or "4.10.0". */
        fun forOpenCv(version: String): WarpKernel =
            if ((version.substringBefore('.').toIntOrNull() ?: 5) >= 5) FLOAT32 else FIXED_POINT
    }
}

/** How an image was placed into the square detector input: input = image * scale + (padX, padY). */
data class Letterbox(val scale: Double, val padX: Double, val padY: Double) {
    /** Input-space coordinates back to the image, in float32 as numpy computes them. */
    fun toImageX(x: Float): Float = (x - padX.toFloat()) / scale.toFloat()
    fun toImageY(y: Float): Float = (y - padY.toFloat()) / scale.toFloat()
}

class Letterboxed(val canvas: RgbImage, val box: Letterbox)

/**
 * `squeezerface.detect.letterbox` (upscale=False): fit into size x size keeping the aspect ratio, never
 * enlarging, INTER_AREA when shrinking, centred on black. Python's round() is half-to-even, like rint.
 */
fun letterbox(image: RgbImage, size: Int): Letterboxed {
    val h = image.height
    val w = image.width
    val scale = min(size.toDouble() / max(h, w), 1.0)
    val nh = max(1, Math.rint(h * scale).toInt())
    val nw = max(1, Math.rint(w * scale).toInt())
    val resized = if (scale < 1) Resample.resizeArea(image, nw, nh) else image
    val canvas = RgbImage(size, size)
    val py = (size - nh) / 2
    val px = (size - nw) / 2
    for (y in 0 until nh) {
        System.arraycopy(resized.data, y * nw * 3, canvas.data, ((py + y) * size + px) * 3, nw * 3)
    }
    return Letterboxed(canvas, Letterbox(nw.toDouble() / w, px.toDouble(), py.toDouble()))
}
