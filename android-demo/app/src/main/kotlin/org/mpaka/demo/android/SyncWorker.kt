package org.mpaka.demo.android

import android.content.Context
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import androidx.work.workDataOf
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import org.mpaka.core.MpakaSyncClient
import org.mpaka.core.SyncListener
import org.mpaka.core.SyncProgress
import org.mpaka.demo.SyncOutcome
import org.mpaka.demo.runSync

/**
 * Syncs when a network is there. The decisions (retry, enroll again) are
 * runSync's, tested on the JVM in android-demo/shared; this class only
 * adapts them to WorkManager.
 */
class SyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result = withContext(Dispatchers.IO) {
        val app = App.get(applicationContext)
        val enrollment = app.enrollment() ?: return@withContext Result.failure()
        val listener = object : SyncListener {
            override fun onProgress(progress: SyncProgress) {
                setProgressAsync(workDataOf("fraction" to progress.fraction))
            }
        }
        when (val outcome = runSync(MpakaSyncClient(enrollment.serverUrl, null), app.store, enrollment.token, listener)) {
            is SyncOutcome.Done -> Result.success(workDataOf("report" to org.mpaka.demo.describe(outcome)))
            is SyncOutcome.RetryLater -> Result.retry()
            else -> Result.failure(workDataOf("report" to org.mpaka.demo.describe(outcome)))
        }
    }

    companion object {
        fun enqueue(context: Context) {
            val request = OneTimeWorkRequestBuilder<SyncWorker>()
                .setConstraints(Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build())
                .build()
            WorkManager.getInstance(context).enqueueUniqueWork("sync", ExistingWorkPolicy.KEEP, request)
        }
    }
}
