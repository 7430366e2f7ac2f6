// The mpaka Android demo. Open this folder in Android Studio.
// Needs the Android SDK and NDK, Rust (rustup) with the Android targets,
// and cargo-ndk: see README.md.
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
rootProject.name = "mpaka-demo"
include(":app")
