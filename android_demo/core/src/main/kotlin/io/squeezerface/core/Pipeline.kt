package io.squeezerface.core

/** Milliseconds spent in each stage of the last `FacePipeline.process` call. */
data class Timings(
    val detectMs: Double = 0.0,
    val refineMs: Double = 0.0,
    val alignMs: Double = 0.0,
    val embedMs: Double = 0.0,
) {
    val totalMs: Double get() = detectMs + refineMs + alignMs + embedMs
}

/** The subject face of an image with its embedding (unit length), or no face. */
class Processed(val faces: List<Face>, val subject: Face?, val embedding: FloatArray?, val timings: Timings)

/**
 * The runtime's pipeline, detector -> landmark refiner -> alignment -> embedder, on any `TensorModel`s:
 * the same stages as `FaceDetector.detect` (letterbox, decode, NMS, refine each face) and
 * `FaceEmbeddingModel.get` (align, preprocess, embed, normalise), with the face policy "largest".
 *
 * Thresholds come from the cards: detection score and NMS IoU from the detector's card, the verification
 * threshold from the embedder's card at `operatingPoint`.
 */
class FacePipeline(
    private val detector: TensorModel,
    val detectorCard: ModelCard,
    private val refiner: TensorModel?,
    val refinerCard: ModelCard?,
    private val embedder: TensorModel,
    val embedderCard: ModelCard,
    val operatingPoint: String = "far_1e-03",
    val warpKernel: WarpKernel = WarpKernel.DEFAULT,
    private val clock: () -> Long = System::nanoTime,
) {
    init {
        require((refiner == null) == (refinerCard == null)) { "a refiner needs its card, and a card its model" }
    }

    /** A TFLite file has its input size baked in: the detector runs at its tensor's size. */
    val inputSize: Int = detector.input.shape[2]
    private val grid = Detect.priors(inputSize)
    private val detectorSpec = detectorCard.input.copy(height = inputSize, width = inputSize, layout = detector.input.layout)
    private val refinerSpec = if (refiner != null && refinerCard != null) refinerCard.input.withLayout(refiner.input.layout) else null
    val settings: DetectionSettings = detectorCard.detection ?: DetectionSettings()
    val threshold: Double = embedderCard.threshold(operatingPoint)

    init {
        require(embedder.input.layout == embedderCard.input.layout) {
            "${embedderCard.file}: card says ${embedderCard.input.layout} input, model takes ${embedder.input.layout}"
        }
        require(detector.output.elements == grid.size / 3 * 15) {
            "detector output ${detector.output} does not match ${grid.size / 3} locations x 15"
        }
    }

    private fun ms(start: Long) = (clock() - start) / 1e6

    private fun runModel(model: TensorModel, x: FloatArray): FloatArray =
        Quant.dequantize(model.run(Quant.quantize(x, model.input)), model.output)

    /** Faces before refinement, best first. */
    fun detectRough(image: RgbImage): List<Face> {
        val lb = letterbox(image, inputSize)
        val raw = runModel(detector, detectorSpec.prepare(lb.canvas))
        return Detect.facesFromOutput(raw, grid, lb.box, settings.score, settings.nmsIou, image.height, image.width)
    }

    /** The refined 5 points of one face: `LandmarkRefiner.refine` with the card's number of passes. */
    fun refine(image: RgbImage, landmarks: FloatArray): FloatArray {
        val model = refiner ?: return landmarks
        val spec = refinerSpec!!
        var points = landmarks
        repeat(settings.refinerPasses) {
            val crop = Refine.cropFace(image, points, spec.height, warpKernel)
            val raw = runModel(model, spec.prepare(crop.image))
            points = Refine.pointsFromOutput(raw, crop.matrix, spec.height)
        }
        return points
    }

    /** Every face, refined, best first: `FaceDetector.detect`. */
    fun detect(image: RgbImage): List<Face> = detectRough(image).map { it.withLandmarks(refine(image, it.landmarks)) }

    fun align(image: RgbImage, face: Face): RgbImage =
        Align.alignFace(image, face.landmarks, embedderCard.input.height, kernel = warpKernel)

    /** Unit embedding of an aligned face. */
    fun embedAligned(aligned: RgbImage): FloatArray = Matching.normalize(runModel(embedder, embedderCard.input.prepare(aligned)))

    fun embed(image: RgbImage, face: Face): FloatArray = embedAligned(align(image, face))

    /** Detect, pick the largest face, embed it; with per-stage timings. */
    fun process(image: RgbImage): Processed {
        var t = clock()
        val rough = detectRough(image)
        val detectMs = ms(t)
        t = clock()
        val faces = rough.map { it.withLandmarks(refine(image, it.landmarks)) }
        val refineMs = ms(t)
        val subject = Detect.largest(faces) ?: return Processed(faces, null, null, Timings(detectMs, refineMs))
        t = clock()
        val aligned = align(image, subject)
        val alignMs = ms(t)
        t = clock()
        val embedding = embedAligned(aligned)
        val embedMs = ms(t)
        return Processed(faces, subject, embedding, Timings(detectMs, refineMs, alignMs, embedMs))
    }

    /** Compare two embeddings at this pipeline's operating point. */
    fun compare(a: FloatArray, b: FloatArray): Match =
        Match(Matching.cosine(a, b), threshold, Matching.decide(Matching.cosine(a, b), threshold), OperatingPoints.name(operatingPoint))
}
