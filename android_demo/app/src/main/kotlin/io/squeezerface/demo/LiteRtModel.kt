package io.squeezerface.demo

import android.content.Context
import io.squeezerface.core.DType
import io.squeezerface.core.TensorInfo
import io.squeezerface.core.TensorModel
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor

/**
 * One .tflite model on the LiteRT Interpreter (CPU, XNNPACK delegate, `threads` threads), seen by the core
 * as a `TensorModel`: bytes in the input tensor's own type in, the output tensor's bytes out. The shipped
 * models are full-integer int8 (input and output); the core quantizes and dequantizes exactly as the Python
 * runtime's LiteRT backend does, so this class only moves bytes.
 */
class LiteRtModel(model: ByteBuffer, threads: Int) : TensorModel, AutoCloseable {
    private val interpreter = Interpreter(
        model,
        Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true),
    )
    override val input: TensorInfo = info(interpreter.getInputTensor(0))
    override val output: TensorInfo = info(interpreter.getOutputTensor(0))

    // Float tensors travel as little-endian bytes in the core; TFLite reads native order (little-endian on
    // every Android ABI), so the bytes are copied as they are.
    private val inBuffer = ByteBuffer.allocateDirect(input.elements * input.dtype.bytes).order(ByteOrder.nativeOrder())
    private val outBuffer = ByteBuffer.allocateDirect(output.elements * output.dtype.bytes).order(ByteOrder.nativeOrder())

    init {
        check(ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) { "big-endian devices are not supported" }
    }

    override fun run(input: ByteArray): ByteArray {
        require(input.size == inBuffer.capacity()) { "input has ${input.size} bytes, tensor ${this.input} needs ${inBuffer.capacity()}" }
        inBuffer.clear()
        inBuffer.put(input)
        inBuffer.rewind()
        outBuffer.clear()
        interpreter.run(inBuffer, outBuffer)
        outBuffer.rewind()
        return ByteArray(outBuffer.capacity()).also { outBuffer.get(it) }
    }

    override fun close() = interpreter.close()

    companion object {
        private fun info(t: Tensor): TensorInfo {
            val dtype = when (t.dataType()) {
                DataType.FLOAT32 -> DType.FLOAT32
                DataType.INT8 -> DType.INT8
                DataType.UINT8 -> DType.UINT8
                else -> throw IllegalArgumentException("unsupported tensor type ${t.dataType()}")
            }
            val q = t.quantizationParams()
            return TensorInfo(t.shape(), dtype, q.scale.toDouble(), q.zeroPoint)
        }

        /** An asset memory-mapped from the APK (stored uncompressed: see `noCompress` in build.gradle.kts). */
        fun mapAsset(context: Context, name: String): MappedByteBuffer =
            context.assets.openFd(name).use { fd ->
                FileInputStream(fd.fileDescriptor).use { stream ->
                    stream.channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
                }
            }
    }
}
