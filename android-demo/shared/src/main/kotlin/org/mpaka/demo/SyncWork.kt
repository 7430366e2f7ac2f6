package org.mpaka.demo

import org.mpaka.core.MpakaException
import org.mpaka.core.MpakaStore
import org.mpaka.core.MpakaSyncClient
import org.mpaka.core.SyncCancel
import org.mpaka.core.SyncListener
import org.mpaka.core.SyncSummary

/** What the sync worker tells WorkManager and the screen. */
sealed class SyncOutcome {
    /** Up to date; the report lists refused edits and new conflicts. */
    data class Done(val summary: SyncSummary) : SyncOutcome()

    /** No connection (2G dropped, server down): try again later; nothing is lost. */
    data class RetryLater(val reason: String) : SyncOutcome()

    /** The device token is no longer valid: the enumerator must enroll again. */
    data class EnrollAgain(val reason: String) : SyncOutcome()

    /** Stopped by the enumerator. */
    data object Cancelled : SyncOutcome()

    /** Anything else: shown as is, and reported. */
    data class Failed(val reason: String) : SyncOutcome()
}

/**
 * One sync run, as the Android worker does it: blocking (WorkManager runs
 * workers on a background thread), mapping every library error to what the
 * app should do next.
 */
fun runSync(
    client: MpakaSyncClient,
    store: MpakaStore,
    token: String,
    listener: SyncListener? = null,
    cancel: SyncCancel? = null,
): SyncOutcome =
    try {
        SyncOutcome.Done(client.sync(store, token, listener, cancel))
    } catch (e: MpakaException.Network) {
        SyncOutcome.RetryLater(e.reason)
    } catch (e: MpakaException.Unauthorized) {
        SyncOutcome.EnrollAgain(e.reason)
    } catch (e: MpakaException.Cancelled) {
        SyncOutcome.Cancelled
    } catch (e: MpakaException) {
        SyncOutcome.Failed(e.message ?: e.toString())
    }

/** A line for the sync screen's report. */
fun describe(outcome: SyncOutcome): String = when (outcome) {
    is SyncOutcome.Done -> buildString {
        append("Sent ${outcome.summary.pushed}, received ${outcome.summary.pulled}")
        if (outcome.summary.rejected.isNotEmpty()) append("; ${outcome.summary.rejected.size} refused")
        if (outcome.summary.newConflicts > 0uL) append("; ${outcome.summary.newConflicts} conflicts to review")
    }
    is SyncOutcome.RetryLater -> "No connection; will try again. (${outcome.reason})"
    is SyncOutcome.EnrollAgain -> "This phone must be enrolled again."
    SyncOutcome.Cancelled -> "Sync stopped."
    is SyncOutcome.Failed -> "Sync failed: ${outcome.reason}"
}
