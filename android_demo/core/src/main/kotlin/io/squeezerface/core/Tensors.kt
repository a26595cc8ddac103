package io.squeezerface.core

import java.nio.ByteBuffer
import java.nio.ByteOrder

enum class Layout { NHWC, NCHW }

enum class ChannelOrder { RGB, BGR }

/**
 * How to turn an RGB uint8 image into a model's float input, as `squeezerface.modelcard.InputSpec`:
 * x = (pixel - mean) * scale in float32, channels in `channelOrder`, laid out as `layout`.
 */
data class InputSpec(
    val height: Int,
    val width: Int,
    val channelOrder: ChannelOrder = ChannelOrder.RGB,
    val layout: Layout = Layout.NHWC,
    val mean: Double = 127.5,
    val scale: Double = 1.0 / 128.0,
) {
    /** One image (height x width) to a float32 tensor (1, H, W, 3) or (1, 3, H, W), flattened. */
    fun prepare(image: RgbImage): FloatArray {
        require(image.width == width && image.height == height) {
            "expected a ${width}x$height image, got ${image.width}x${image.height}"
        }
        val m = mean.toFloat()
        val s = scale.toFloat()
        val out = FloatArray(height * width * 3)
        val plane = height * width
        for (p in 0 until plane) for (c in 0 until 3) {
            val src = if (channelOrder == ChannelOrder.BGR) 2 - c else c
            val v = ((image.data[p * 3 + src].toInt() and 0xFF).toFloat() - m) * s
            if (layout == Layout.NHWC) out[p * 3 + c] = v else out[c * plane + p] = v
        }
        return out
    }

    fun withLayout(layout: Layout) = copy(layout = layout)
}

enum class DType(val bytes: Int, val min: Int, val max: Int) {
    FLOAT32(4, 0, 0), INT8(1, -128, 127), UINT8(1, 0, 255);

    companion object {
        fun of(name: String): DType = when (name.lowercase()) {
            "float32" -> FLOAT32
            "int8" -> INT8
            "uint8" -> UINT8
            else -> throw IllegalArgumentException("unsupported tensor type $name")
        }
    }
}

/** A model tensor: shape, element type, and (integer types) its affine quantization real = scale (q - zero). */
class TensorInfo(val shape: IntArray, val dtype: DType, val scale: Double = 0.0, val zeroPoint: Int = 0) {
    val elements: Int get() = shape.fold(1) { a, b -> a * b }

    /** NHWC when the last dimension holds the 3 colour channels (the runtime's `Backend.layout`). */
    val layout: Layout get() = if (shape.last() == 3) Layout.NHWC else Layout.NCHW

    override fun toString() = "${shape.joinToString("x")} ${dtype.name.lowercase()}" +
        if (dtype != DType.FLOAT32) " (scale $scale, zero $zeroPoint)" else ""
}

/**
 * Conversions between float tensors and a tensor's own bytes, as `squeezerface.backends.quantize` and
 * `dequantize` do for full-integer LiteRT models: q = clip(round_half_even(x / scale) + zero) in float32;
 * x = (q - zero) * scale. Float32 tensors travel as little-endian floats.
 */
object Quant {
    fun quantize(x: FloatArray, info: TensorInfo): ByteArray {
        if (info.dtype == DType.FLOAT32) {
            val buf = ByteBuffer.allocate(x.size * 4).order(ByteOrder.LITTLE_ENDIAN)
            for (v in x) buf.putFloat(v)
            return buf.array()
        }
        val s = info.scale.toFloat()
        val z = info.zeroPoint.toFloat()
        return ByteArray(x.size) {
            val q = (Math.rint((x[it] / s).toDouble()).toFloat() + z).coerceIn(info.dtype.min.toFloat(), info.dtype.max.toFloat())
            q.toInt().toByte()
        }
    }

    fun dequantize(raw: ByteArray, info: TensorInfo): FloatArray {
        if (info.dtype == DType.FLOAT32) {
            val buf = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN)
            return FloatArray(raw.size / 4) { buf.getFloat() }
        }
        val s = info.scale.toFloat()
        val z = info.zeroPoint.toFloat()
        return FloatArray(raw.size) {
            val q = if (info.dtype == DType.INT8) raw[it].toInt() else raw[it].toInt() and 0xFF
            (q.toFloat() - z) * s
        }
    }
}

/**
 * A loaded model as the core sees it: one input, one output, each in its own type. The app implements it
 * on the LiteRT `Interpreter`; tests implement it with recorded outputs of the Python runtime.
 */
interface TensorModel {
    val input: TensorInfo
    val output: TensorInfo

    /** Run on the input tensor's bytes (int8/uint8 values, or little-endian float32); the output's bytes. */
    fun run(input: ByteArray): ByteArray
}
