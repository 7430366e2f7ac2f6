package org.mpaka.demo

import java.security.SecureRandom
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import org.mpaka.core.MpakaFormSession
import org.mpaka.core.MpakaStore
import org.mpaka.core.SessionContext
import org.mpaka.core.SubmissionStatus
import org.mpaka.core.MpakaSyncClient
import org.mpaka.core.SyncOptions

/**
 * Figures for docs/benchmarks.md, measured from Kotlin through JNA: time per
 * form-session answer across the boundary, and cold open of a store holding
 * many submissions. Printed, not asserted (these machines are shared).
 *
 * CI runs it small; for the documented figures:
 *   scripts/bindings --release
 *   (cd android-demo/shared && mvn -q test -Dtest=BoundaryBenchmarkTest -Dmpaka.bench.submissions=10000)
 */
class BoundaryBenchmarkTest {
    private val submissions = (System.getProperty("mpaka.bench.submissions") ?: "100").toInt()

    private fun median(nanos: List<Long>): Double = nanos.sorted()[nanos.size / 2] / 1e6

    @Test
    fun `answer calls and cold opens`() = TestServer().use { server ->
        val key = ByteArray(32).also { SecureRandom().nextBytes(it) }
        val path = server.storePath("bench")
        var store = MpakaStore.open(path, key)
        val token = client(server).enroll(store, server.enrollmentCode("amina", "enumerator"), "bench").token
        runSync(client(server), store, token)
        val form = store.forms().single { it.formId == "trader_survey" }
        val context = SessionContext("amina", "tecno", "English (en)")

        // Time per answer: the typical call while an enumerator taps.
        val session = MpakaFormSession.start(store, form.formId, form.version, context)
        for ((q, v) in listOf("consent" to "yes", "paid_fees" to "yes", "n_goods" to "2")) session.setAnswer(q, emptyList(), v)
        val perCall = (0 until 2000).map { i ->
            val start = System.nanoTime()
            session.setAnswer("age", emptyList(), (20 + i % 50).toString())
            System.nanoTime() - start
        }
        println("BENCH set_answer across the boundary: median %.3f ms over %d calls".format(median(perCall), perCall.size))

        // A store holding many complete interviews, filled through sessions.
        val filled = System.nanoTime()
        repeat(submissions) { n ->
            val s = MpakaFormSession.start(store, form.formId, form.version, context)
            for ((q, v) in listOf(
                "consent" to "yes", "border_post" to "rusizi_2", "side" to "drc", "sex" to "female",
                "age" to (18 + n % 60).toString(), "nationality" to "CD", "crossing_frequency" to "daily",
                "n_goods" to "1", "documents" to "jeton", "paid_fees" to "no", "harassment" to "no",
                "income_band" to "under_50k",
            )) s.setAnswer(q, emptyList(), v)
            s.addRepeat("goods", emptyList())
            s.setAnswer("good", listOf(1u), "beans")
            s.setAnswer("value_rwf", listOf(1u), (1000 + n).toString())
            check(s.finalize().isEmpty())
            s.close()
        }
        val fillSeconds = (System.nanoTime() - filled) / 1e9
        println("BENCH filled %d interviews through form sessions in %.1f s".format(submissions, fillSeconds))
        val someId = store.submissions().first().id
        store.close()

        // Cold open: open the encrypted file and read one interview.
        val opens = (0 until 7).map {
            val start = System.nanoTime()
            store = MpakaStore.open(path, key)
            val one = store.getSubmission(someId)
            val took = System.nanoTime() - start
            assertEquals(SubmissionStatus.COMPLETE, one?.status)
            store.close()
            took
        }
        println("BENCH cold open of a store with %d submissions (SQLCipher) and one read: median %.1f ms".format(submissions, median(opens)))
        store = MpakaStore.open(path, key)
        assertTrue(store.submissions().size == submissions)
        store.close()
    }
}
