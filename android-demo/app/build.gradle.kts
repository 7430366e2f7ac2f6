import java.io.File

plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
    id("org.jetbrains.kotlin.plugin.compose")
}

val repoRoot: File = rootDir.parentFile

android {
    namespace = "org.mpaka.demo.android"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.mpaka.demo"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64") }
    }

    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
    buildFeatures { compose = true }

    sourceSets["main"].apply {
        // The logic tested on the JVM (android-demo/shared), and the
        // generated bindings (scripts/bindings): one copy of each.
        kotlin.srcDir("../shared/src/main/kotlin")
        kotlin.srcDir(File(repoRoot, "build/bindings/kotlin"))
        jniLibs.srcDir(layout.buildDirectory.dir("rustJniLibs"))
    }
}

dependencies {
    implementation("net.java.dev.jna:jna:5.15.0@aar")
    implementation("androidx.core:core-ktx:1.15.0")
    implementation("androidx.activity:activity-compose:1.9.3")
    implementation("androidx.lifecycle:lifecycle-viewmodel-compose:2.8.7")
    implementation("androidx.work:work-runtime-ktx:2.10.0")
    implementation(platform("androidx.compose:compose-bom:2024.12.01"))
    implementation("androidx.compose.material3:material3")
    implementation("androidx.compose.ui:ui")
}

// The Rust library for every ABI, SQLCipher on libtomcrypt compiled in
// (scripts/cargo-tomcrypt sets the environment libsqlite3-sys needs), with
// the size-tuned `mobile` profile.
val cargoNdk by tasks.registering(Exec::class) {
    group = "rust"
    description = "Builds libmpaka_ffi.so for arm64-v8a, armeabi-v7a and x86_64 with cargo-ndk."
    workingDir = repoRoot
    commandLine(
        "./scripts/cargo-tomcrypt", "ndk",
        "-t", "arm64-v8a", "-t", "armeabi-v7a", "-t", "x86_64",
        "--platform", "26",
        "-o", layout.buildDirectory.dir("rustJniLibs").get().asFile.path,
        "build", "--profile", "mobile", "-p", "mpaka-ffi", "--lib", "--features", "encryption-tomcrypt",
    )
}

// The Kotlin bindings, generated from the host build (library mode).
val bindings by tasks.registering(Exec::class) {
    group = "rust"
    description = "Generates the Kotlin bindings into build/bindings/kotlin (scripts/bindings)."
    workingDir = repoRoot
    commandLine("./scripts/bindings", "--release")
}

tasks.named("preBuild") { dependsOn(cargoNdk, bindings) }
