// The squeezerface Android demo: a pure Kotlin/JVM core (tested on the JVM against the Python runtime's
// golden vectors) and the Android app that runs it on LiteRT with CameraX. See README.md.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "squeezerface-android-demo"
include(":core", ":app")
