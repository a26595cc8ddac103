package io.squeezerface.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Color
import android.os.Bundle
import android.widget.Button
import android.widget.EditText
import android.widget.TextView
import android.widget.Toast
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import java.io.File
import java.util.Locale
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Camera preview plus live analysis. Each analysed frame goes through the core's `FacePipeline`
 * (detector -> landmark refiner -> alignment -> embedder, on LiteRT) and then, by mode:
 * - Enrol: collects ENROL_FRAMES embeddings of the largest face and stores them under the typed name;
 * - Verify: compares every frame's face with the typed name's templates at the embedder card's
 *   far_1e-03 threshold and shows score and decision, until Stop;
 * - Forget removes the typed name. Per-stage latency is shown for every frame.
 * All model work happens on one background thread (`analysis`), which owns the engine.
 */
class MainActivity : AppCompatActivity() {
    private enum class Mode { IDLE, ENROL, VERIFY }

    private lateinit var preview: PreviewView
    private lateinit var result: TextView
    private lateinit var latency: TextView
    private lateinit var enrolled: TextView
    private lateinit var name: EditText
    private lateinit var verifyButton: Button
    private lateinit var threadsButton: Button

    private val analysis: ExecutorService = Executors.newSingleThreadExecutor()
    private var engine: FaceEngine? = null // touched on `analysis` only
    private var gallery: SecureGallery? = null

    @Volatile private var mode = Mode.IDLE
    @Volatile private var target = ""
    @Volatile private var threads = 2
    private val collected = ArrayList<FloatArray>() // on `analysis`
    private var lastCollect = 0L

    private val askCamera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else result.setText(R.string.no_camera)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        preview = findViewById(R.id.preview)
        result = findViewById(R.id.result)
        latency = findViewById(R.id.latency)
        enrolled = findViewById(R.id.enrolled)
        name = findViewById(R.id.name)
        verifyButton = findViewById(R.id.verify)
        threadsButton = findViewById(R.id.threads)
        threads = getPreferences(MODE_PRIVATE).getInt("threads", 2)
        threadsButton.text = getString(R.string.threads, threads)

        findViewById<Button>(R.id.enrol).setOnClickListener { typedName()?.let { startMode(Mode.ENROL, it) } }
        verifyButton.setOnClickListener {
            if (mode == Mode.VERIFY) startMode(Mode.IDLE, "") else typedName()?.let { startMode(Mode.VERIFY, it) }
        }
        findViewById<Button>(R.id.forget).setOnClickListener { typedName()?.let { forget(it) } }
        threadsButton.setOnClickListener { cycleThreads() }

        analysis.execute { loadEngine() }
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            askCamera.launch(Manifest.permission.CAMERA)
        }
    }

    override fun onDestroy() {
        super.onDestroy()
        analysis.execute { engine?.close(); engine = null }
        analysis.shutdown()
    }

    private fun typedName(): String? {
        val text = name.text.toString().trim()
        if (text.isEmpty()) Toast.makeText(this, R.string.need_name, Toast.LENGTH_SHORT).show()
        return text.ifEmpty { null }
    }

    private fun startMode(next: Mode, who: String) {
        analysis.execute { collected.clear() }
        target = who
        mode = next
        verifyButton.setText(if (next == Mode.VERIFY) R.string.stop else R.string.verify)
        result.setTextColor(Color.GRAY)
        result.text = when (next) {
            Mode.ENROL -> "Enrolling $who: look at the camera"
            Mode.VERIFY -> "Verifying against $who"
            Mode.IDLE -> ""
        }
    }

    private fun forget(who: String) = analysis.execute {
        val removed = gallery?.forget(who) ?: false
        val names = enrolledNames()
        ui { result.text = if (removed) "Forgot $who" else "$who is not enrolled"; showEnrolled(names) }
    }

    private fun cycleThreads() {
        threads = when (threads) { 1 -> 2; 2 -> 4; else -> 1 }
        getPreferences(MODE_PRIVATE).edit().putInt("threads", threads).apply()
        threadsButton.text = getString(R.string.threads, threads)
        analysis.execute { loadEngine() }
    }

    /** (Re)opens the models with the current thread count; on `analysis`. */
    private fun loadEngine() {
        engine?.close()
        engine = null
        try {
            val e = FaceEngine.load(this, threads)
            engine = e
            if (gallery == null) gallery = SecureGallery(File(filesDir, "gallery.sqfg"), e.model)
            val note = gallery?.loadError
            val names = enrolledNames()
            ui {
                if (note != null) result.text = note
                showEnrolled(names)
            }
        } catch (e: Exception) {
            ui { result.setTextColor(Color.RED); result.text = "Cannot load the models: ${e.message}" }
        }
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val provider = future.get()
            val previewUse = Preview.Builder().build().also { it.setSurfaceProvider(preview.surfaceProvider) }
            val analysisUse = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
                .also { it.setAnalyzer(analysis) { frame -> analyse(frame) } }
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_FRONT_CAMERA, previewUse, analysisUse)
        }, ContextCompat.getMainExecutor(this))
    }

    /** One camera frame through the pipeline; on `analysis`. */
    private fun analyse(frame: ImageProxy) {
        val e = engine
        if (e == null) { frame.close(); return }
        val t0 = System.nanoTime()
        val image = try { Frames.toRgb(frame) } finally { frame.close() }
        val convertMs = (System.nanoTime() - t0) / 1e6
        val out = e.pipeline.process(image)
        val t = out.timings
        val timing = String.format(
            Locale.ROOT,
            "%dx%d  %d face(s)  %d thr\nconvert %.1f  detect %.1f  refine %.1f  align %.1f  embed %.1f  = %.1f ms",
            image.width, image.height, out.faces.size, e.threads, convertMs, t.detectMs, t.refineMs, t.alignMs,
            t.embedMs, convertMs + t.totalMs,
        )
        val embedding = out.embedding
        val message: Pair<String, Int>? = when {
            embedding == null -> if (mode != Mode.IDLE) "No face" to Color.GRAY else null
            mode == Mode.ENROL -> enrolStep(embedding)
            mode == Mode.VERIFY -> verifyStep(embedding, e)
            else -> null
        }
        ui {
            latency.text = timing
            if (message != null) { result.setTextColor(message.second); result.text = message.first }
        }
    }

    private fun enrolStep(embedding: FloatArray): Pair<String, Int> {
        val now = System.nanoTime()
        if (now - lastCollect > COLLECT_GAP_NS) { collected.add(embedding); lastCollect = now }
        if (collected.size < ENROL_FRAMES) return "Enrolling $target: ${collected.size}/$ENROL_FRAMES" to Color.GRAY
        val who = target
        gallery?.enroll(who, collected.toList())
        collected.clear()
        mode = Mode.IDLE
        val names = enrolledNames()
        ui { showEnrolled(names) }
        return "Enrolled $who (${gallery?.gallery?.identity(who)?.templates?.size} templates)" to Color.rgb(0, 128, 0)
    }

    private fun verifyStep(embedding: FloatArray, e: FaceEngine): Pair<String, Int> {
        val g = gallery ?: return "No gallery" to Color.RED
        if (target !in g.gallery) return "$target is not enrolled" to Color.RED
        val m = g.verify(target, embedding, e.pipeline.threshold)
        val verdict = if (m.same) "SAME person" else "not $target"
        val text = String.format(Locale.ROOT, "%s  (cosine %.3f %s %.3f, %s)", verdict, m.score,
            if (m.same) ">" else "<=", m.threshold, e.pipeline.operatingPoint)
        return text to if (m.same) Color.rgb(0, 128, 0) else Color.RED
    }

    /** On `analysis`, which owns the gallery. */
    private fun enrolledNames(): List<String> = gallery?.gallery?.names ?: emptyList()

    private fun showEnrolled(names: List<String>) {
        enrolled.text = if (names.isEmpty()) "Nobody enrolled" else "Enrolled: " + names.joinToString()
    }

    private fun ui(block: () -> Unit) = runOnUiThread(block)

    companion object {
        private const val ENROL_FRAMES = 5
        private const val COLLECT_GAP_NS = 300_000_000L
    }
}
