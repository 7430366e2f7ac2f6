package org.mpaka.demo

import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.util.concurrent.TimeUnit

/**
 * A real `mpaka serve` on a free port of 127.0.0.1 (the binary from the
 * `mpaka.bin` system property, set by the pom). A missing binary fails the
 * test with what to run, never skips it.
 */
class TestServer : AutoCloseable {
    private val dir: File = Files.createTempDirectory("mpaka-kotlin").toFile()
    private val process: Process
    val url: String
    private val adminToken: String
    private val http: HttpClient = HttpClient.newHttpClient()

    init {
        val bin = File(System.getProperty("mpaka.bin") ?: error("the mpaka.bin system property is not set"))
        check(bin.canExecute()) { "no mpaka binary at $bin: run cargo build -p mpaka-cli (scripts/test-all does)" }
        process = ProcessBuilder(bin.path, "serve", "--addr", "127.0.0.1:0", "--data-dir", File(dir, "data").path)
            .redirectError(File(dir, "server.log"))
            .also { it.environment()["MPAKA_REQUESTS_PER_MINUTE"] = "100000" }
            .start()
        val lines = process.inputStream.bufferedReader().lineSequence().iterator()
        val first = lines.next()
        url = Regex("http://127\\.0\\.0\\.1:\\d+").find(first)?.value ?: error("no address in `$first`")
        var token: String? = null
        while (token == null && lines.hasNext()) {
            token = Regex("mpk_[A-Za-z0-9_-]+").find(lines.next())?.value
        }
        adminToken = token ?: error("first start prints the admin token")
    }

    private fun post(path: String, json: String): String {
        val request = HttpRequest.newBuilder(URI.create(url + path))
            .header("Authorization", "Bearer $adminToken")
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(json))
            .build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString())
        check(response.statusCode() in 200..299) { "$path: ${response.statusCode()} ${response.body()}" }
        return response.body()
    }

    /** Adds a user to the first project and issues an enrollment code. */
    fun enrollmentCode(username: String, role: String): String {
        post("/v1/projects/rusizi-bukavu/users", """{"username": "$username", "role": "$role"}""")
        val body = post("/v1/projects/rusizi-bukavu/enrollments", """{"username": "$username"}""")
        return Regex("\"code\":\"([A-Z0-9-]+)\"").find(body)?.groupValues?.get(1) ?: error("no code in $body")
    }

    /** A fresh store path in this server's temporary folder. */
    fun storePath(name: String): String = File(dir, "$name.mpaka").path

    override fun close() {
        process.destroyForcibly()
        process.waitFor(10, TimeUnit.SECONDS)
        dir.deleteRecursively()
    }
}
