package org.mpaka.demo.android

import android.content.Context
import java.io.File
import org.mpaka.core.MpakaStore

/** Where this phone syncs, and its token (app-private preferences). */
data class DeviceEnrollment(val serverUrl: String, val token: String, val username: String, val role: String)

/** The one store of the app, opened once with the Keystore-held key. */
class App private constructor(context: Context) {
    private val prefs = context.getSharedPreferences("mpaka", Context.MODE_PRIVATE)
    val store: MpakaStore = MpakaStore.open(File(context.filesDir, "mpaka.mpaka").path, StoreKey.get(context))

    fun enrollment(): DeviceEnrollment? {
        val url = prefs.getString("server", null) ?: return null
        val token = prefs.getString("token", null) ?: return null
        return DeviceEnrollment(url, token, prefs.getString("user", "")!!, prefs.getString("role", "")!!)
    }

    fun saveEnrollment(e: DeviceEnrollment) {
        prefs.edit().putString("server", e.serverUrl).putString("token", e.token)
            .putString("user", e.username).putString("role", e.role).apply()
    }

    companion object {
        @Volatile private var instance: App? = null

        fun get(context: Context): App =
            instance ?: synchronized(this) { instance ?: App(context.applicationContext).also { instance = it } }
    }
}
