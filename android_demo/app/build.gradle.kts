plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "io.squeezerface.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "io.squeezerface.demo"
        minSdk = 24 // Android Keystore AES-GCM needs 23; CameraX and LiteRT need 21
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    androidResources {
        // Models are memory-mapped straight from the APK, which needs them stored uncompressed.
        noCompress += "tflite"
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    implementation(project(":core"))
    implementation(libs.litert)
    implementation(libs.camera.core)
    implementation(libs.camera.camera2)
    implementation(libs.camera.lifecycle)
    implementation(libs.camera.view)
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.appcompat)
}

// The models are not in git: python android_demo/scripts/copy_models.py copies them (and their cards) from
// the installed squeezerface package into src/main/assets. Fail early, with that command, if it was not run.
val checkModels by tasks.registering {
    val manifest = layout.projectDirectory.file("src/main/assets/models.json")
    doLast {
        if (!manifest.asFile.isFile) {
            throw GradleException(
                "no models in app/src/main/assets: run `python android_demo/scripts/copy_models.py` " +
                    "from the repository root (with the squeezerface package installed) first"
            )
        }
    }
}
tasks.named("preBuild") { dependsOn(checkModels) }
