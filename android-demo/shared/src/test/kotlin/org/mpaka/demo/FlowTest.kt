package org.mpaka.demo

import java.security.SecureRandom
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertTrue
import org.mpaka.core.Attendee
import org.mpaka.core.AwarenessSession
import org.mpaka.core.MpakaException
import org.mpaka.core.MpakaFormSession
import org.mpaka.core.MpakaStore
import org.mpaka.core.SessionContext
import org.mpaka.core.SubmissionStatus
import org.mpaka.core.SyncCancel
import org.mpaka.core.SyncListener
import org.mpaka.core.SyncProgress
import org.mpaka.core.Trader
import org.mpaka.core.MpakaSyncClient
import org.mpaka.core.SyncOptions

/** Small exchanges, as on 2G: the flow spans several of them. */
internal fun client(server: TestServer) =
    MpakaSyncClient(server.url, SyncOptions(batchKib = 16u, maxRetries = 2u, requestTimeoutSeconds = 30u))

private fun key() = ByteArray(32).also { SecureRandom().nextBytes(it) }

private fun trader(name: String, phone: String) = Trader(
    id = "", fullName = name, sex = "female", yearOfBirth = 1990, ageBand = null, nationality = "CD",
    phone = phone, mainGoods = listOf("beans"), borderPost = "rusizi_2", consentGiven = true, consentAt = null,
)

class FlowTest {
    @Test
    fun `a field day through the Kotlin bindings`() = TestServer().use { server ->
        val amina = MpakaStore.open(server.storePath("amina"), key())
        val officer = MpakaStore.open(server.storePath("officer"), key())
        val aminaToken = client(server).enroll(amina, server.enrollmentCode("amina", "enumerator"), "Tecno Spark").token
        val officerToken = client(server).enroll(officer, server.enrollmentCode("me01", "me_officer"), "Laptop").token

        // The sync worker's logic, with a progress listener.
        val seen = mutableListOf<SyncProgress>()
        val listener = object : SyncListener {
            override fun onProgress(progress: SyncProgress) {
                seen += progress
            }
        }
        val first = runSync(client(server), amina, aminaToken, listener)
        assertIs<SyncOutcome.Done>(first)
        assertEquals(2u, first.summary.formsReceived)
        assertEquals(1.0, seen.last().fraction)
        val survey = amina.forms().single { it.formId == "trader_survey" }

        val traderId = amina.saveTrader(trader("Mwamini Furaha", "+243970000001"))
        val sessionId = amina.saveSession(
            AwarenessSession("", "hiv_aids", null, "2026-11-27", "rusizi_2", "rwanda", "amina", "rw"),
        )
        amina.registerAttendance(sessionId, Attendee.Trader(traderId), "female", "amina")
        amina.registerAttendance(sessionId, Attendee.Trader(traderId), "female", "amina")
        assertEquals(1, amina.attendance(sessionId).size, "one person, registered twice, counts once")

        // The survey screen's view-model over a form session.
        val session = MpakaFormSession.start(amina, "trader_survey", survey.version, SessionContext("amina", "tecno", "Français (fr)"))
        session.setTrader(traderId)
        val model = SurveyViewModel(session)
        var state = model.start()
        assertTrue(!state.canFinalize)
        for ((q, v) in listOf(
            "consent" to "yes", "border_post" to "rusizi_2", "side" to "drc", "sex" to "female",
            "nationality" to "CD", "crossing_frequency" to "daily", "n_goods" to "1", "documents" to "jeton",
            "paid_fees" to "no", "harassment" to "no", "income_band" to "under_50k",
        )) {
            state = model.answer(q, emptyList(), v)
        }
        state = model.answer("age", emptyList(), "7")
        assertTrue(state.problems.containsKey("age"), "the constraint's message is shown: ${state.problems}")
        state = model.answer("age", emptyList(), "41")
        assertTrue("age" !in state.problems)
        state = model.addRepeat("goods")
        state = model.answer("good", listOf(1u), "cassava_flour")
        state = model.answer("value_rwf", listOf(1u), "8000")
        assertTrue(state.prompts.any { it.question == "good" && it.instance == listOf(1u) && it.value == "cassava_flour" })
        assertTrue(state.prompts.first { it.question == "consent" }.label.isNotEmpty(), "labels in French")
        assertFailsWith<MpakaException.InvalidInput> { session.setAnswer("no_such_question", emptyList(), "1") }
        state = model.finalize()
        assertTrue(state.saved, "finalized: ${state.problems}")
        assertEquals(SubmissionStatus.COMPLETE, amina.getSubmission(session.submissionId())!!.status)

        assertIs<SyncOutcome.Done>(runSync(client(server), amina, aminaToken))
        assertIs<SyncOutcome.Done>(runSync(client(server), officer, officerToken))
        assertEquals(1, officer.submissions().size)

        // Both phones correct the phone number offline: converged, with a conflict.
        amina.saveTrader(amina.getTrader(traderId)!!.copy(phone = "+250788000002"))
        officer.saveTrader(officer.getTrader(traderId)!!.copy(phone = "+243970000003"))
        repeat(2) {
            runSync(client(server), amina, aminaToken)
            runSync(client(server), officer, officerToken)
        }
        assertEquals(amina.getTrader(traderId), officer.getTrader(traderId))
        val conflict = officer.conflicts(true).single()
        assertEquals("phone", conflict.field)
        officer.resolveConflict(conflict.id, "\"+250788000002\"")
        runSync(client(server), officer, officerToken)
        runSync(client(server), amina, aminaToken)
        assertTrue(amina.conflicts(true).isEmpty())
        assertEquals("+250788000002", amina.getTrader(traderId)!!.phone)
    }

    @Test
    fun `errors come back as typed exceptions and outcomes, from any thread`() = TestServer().use { server ->
        val store = MpakaStore.open(server.storePath("p"), key())
        assertFailsWith<MpakaException.WrongKey> { MpakaStore.open(server.storePath("p"), key()) }
        assertFailsWith<MpakaException.WrongKey> { MpakaStore.open(server.storePath("q"), ByteArray(3)) }
        assertFailsWith<MpakaException.InvalidInput> { store.getTrader("not-a-uuid") }
        assertFailsWith<MpakaException.InvalidInput> { store.saveTrader(trader("X", "+2507").copy(sex = "?")) }
        assertIs<SyncOutcome.EnrollAgain>(runSync(client(server), store, "mpk_unknown"))
        val token = client(server).enroll(store, server.enrollmentCode("baraka", "enumerator"), "phone").token
        val cancel = SyncCancel().also { it.cancel() }
        assertEquals(SyncOutcome.Cancelled, runSync(client(server), store, token, cancel = cancel))
        // Nobody listens on port 9 here: a network error after the retries, not a crash.
        assertIs<SyncOutcome.RetryLater>(runSync(MpakaSyncClient("http://127.0.0.1:9", SyncOptions(batchKib = null, maxRetries = 1u, requestTimeoutSeconds = 5u)), store, token))

        // Twenty threads writing at once (Dispatchers.IO does this).
        val pool = Executors.newFixedThreadPool(8)
        val ids = (1..20).map { n -> pool.submit<String> { store.saveTrader(trader("Trader $n", "+2507880000%02d".format(n))) } }
        pool.shutdown()
        assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS))
        assertEquals(20, ids.map { it.get() }.toSet().size)
        assertEquals(20, store.searchTraders("trader", 100u).size)
    }
}
