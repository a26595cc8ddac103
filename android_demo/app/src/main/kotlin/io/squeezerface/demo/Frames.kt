package io.squeezerface.demo

import android.graphics.Bitmap
import android.graphics.Matrix
import androidx.camera.core.ImageProxy
import io.squeezerface.core.RgbImage

/** A CameraX analysis frame (RGBA_8888) as the upright RGB image the core works on. */
object Frames {
    fun toRgb(frame: ImageProxy): RgbImage {
        var bitmap = frame.toBitmap()
        val rotation = frame.imageInfo.rotationDegrees
        if (rotation != 0) {
            val m = Matrix().apply { postRotate(rotation.toFloat()) }
            bitmap = Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, m, true)
        }
        val pixels = IntArray(bitmap.width * bitmap.height)
        bitmap.getPixels(pixels, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        return RgbImage.fromArgb(bitmap.width, bitmap.height, pixels)
    }
}
