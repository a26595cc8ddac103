// Pure Kotlin/JVM: no android.* and no LiteRT. The app depends on it; its tests run on any JVM.
plugins {
    alias(libs.plugins.kotlin.jvm)
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    testImplementation(libs.junit)
}

tasks.test {
    // The golden-vector tests read the folder android_demo/scripts/export_golden.py writes:
    //   python android_demo/scripts/export_golden.py --out /tmp/golden
    //   ./gradlew :core:test -Pgolden.dir=/tmp/golden      (or GOLDEN_DIR=/tmp/golden)
    // Without it only the tests that need no golden data run. In this repository's CI the same sources
    // are compiled with kotlinc and run with JUnitCore by tests/test_android_core.py (no Gradle there).
    val golden = providers.gradleProperty("golden.dir").orElse(providers.environmentVariable("GOLDEN_DIR"))
    if (golden.isPresent) {
        systemProperty("golden.dir", golden.get())
    } else {
        filter { includeTestsMatching("*GalleryCodecTest") }
    }
}
