package org.mpaka.demo.android

import android.os.Build
import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.compose.foundation.layout.*
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.foundation.selection.selectable
import androidx.compose.material3.*
import androidx.compose.runtime.*
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.mpaka.core.*
import org.mpaka.demo.SurveyState
import org.mpaka.demo.SurveyViewModel
import org.mpaka.demo.describe
import org.mpaka.demo.runSync

/** The screens. All work happens in the library; these only draw and tap. */
sealed class Screen {
    data object Enroll : Screen()
    data object Home : Screen()
    data class Survey(val form: FormInfo) : Screen()
    data object Registry : Screen()
    data class Attendance(val session: AwarenessSession) : Screen()
    data object Sync : Screen()
}

class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val app = App.get(this)
        setContent {
            MaterialTheme {
                var screen by remember { mutableStateOf(if (app.enrollment() == null) Screen.Enroll else Screen.Home) }
                var language by remember { mutableStateOf("English (en)") }
                Surface(Modifier.fillMaxSize()) {
                    when (val s = screen) {
                        Screen.Enroll -> EnrollScreen(app) { screen = Screen.Home }
                        Screen.Home -> HomeScreen(app, language, { language = it }) { screen = it }
                        is Screen.Survey -> SurveyScreen(app, s.form, language) { screen = Screen.Home }
                        Screen.Registry -> RegistryScreen(app) { screen = Screen.Home }
                        is Screen.Attendance -> AttendanceScreen(app, s.session) { screen = Screen.Home }
                        Screen.Sync -> SyncScreen(app) { screen = Screen.Home }
                    }
                }
            }
        }
    }
}

/** Runs library work off the main thread and hands the result back. */
@Composable
fun rememberIo(): (suspend () -> Unit) -> Unit {
    val scope = rememberCoroutineScope()
    return { block -> scope.launch { block() } }
}

suspend fun <T> io(block: () -> T): T = withContext(Dispatchers.IO) { block() }

@Composable
fun EnrollScreen(app: App, done: () -> Unit) {
    var url by remember { mutableStateOf("https://") }
    var code by remember { mutableStateOf("") }
    var error by remember { mutableStateOf<String?>(null) }
    val launch = rememberIo()
    val context = androidx.compose.ui.platform.LocalContext.current
    Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
        Text(stringResource(R.string.enroll_title), style = MaterialTheme.typography.headlineSmall)
        OutlinedTextField(url, { url = it }, label = { Text(stringResource(R.string.server_url)) })
        OutlinedTextField(code, { code = it }, label = { Text(stringResource(R.string.enrollment_code)) })
        error?.let { Text(it, color = MaterialTheme.colorScheme.error) }
        Button(onClick = {
            launch {
                try {
                    val e = io { MpakaSyncClient(url.trim(), null).enroll(app.store, code.trim(), Build.MODEL) }
                    app.saveEnrollment(DeviceEnrollment(url.trim(), e.token, e.username, e.role.name))
                    SyncWorker.enqueue(context) // the forms arrive with the first sync
                    done()
                } catch (e: MpakaException) {
                    error = e.message
                }
            }
        }) { Text(stringResource(R.string.enroll)) }
    }
}

@Composable
fun HomeScreen(app: App, language: String, setLanguage: (String) -> Unit, go: (Screen) -> Unit) {
    var forms by remember { mutableStateOf(emptyList<FormInfo>()) }
    var sessions by remember { mutableStateOf(emptyList<AwarenessSession>()) }
    var pending by remember { mutableStateOf(0uL) }
    LaunchedEffect(Unit) {
        forms = io { app.store.forms() }
        sessions = io { app.store.sessions() }
        pending = io { app.store.pendingCount() }
    }
    LazyColumn(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
        item { Text(stringResource(R.string.pending, pending.toInt())) }
        item {
            Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                Button(onClick = { go(Screen.Sync) }) { Text(stringResource(R.string.sync)) }
                Button(onClick = { go(Screen.Registry) }) { Text(stringResource(R.string.registry)) }
            }
        }
        item {
            // The form's own languages: English, French, Kinyarwanda, Swahili.
            val languages = forms.flatMap { it.languages }.distinct()
            Row(horizontalArrangement = Arrangement.spacedBy(4.dp)) {
                languages.forEach { l -> FilterChip(l == language, { setLanguage(l) }, { Text(l.substringAfter("(").dropLast(1)) }) }
            }
        }
        item { Text(stringResource(R.string.forms), style = MaterialTheme.typography.titleMedium) }
        items(forms) { f -> TextButton(onClick = { go(Screen.Survey(f)) }) { Text("${f.title} (${f.version})") } }
        item { Text(stringResource(R.string.sessions), style = MaterialTheme.typography.titleMedium) }
        items(sessions) { s -> TextButton(onClick = { go(Screen.Attendance(s)) }) { Text("${s.date} ${s.topic} (${s.side})") } }
    }
}

@Composable
fun SurveyScreen(app: App, form: FormInfo, language: String, back: () -> Unit) {
    val enrollment = app.enrollment()
    var model by remember { mutableStateOf<SurveyViewModel?>(null) }
    var state by remember { mutableStateOf<SurveyState?>(null) }
    val launch = rememberIo()
    LaunchedEffect(form, language) {
        val session = io {
            MpakaFormSession.start(app.store, form.formId, form.version,
                SessionContext(enrollment?.username ?: "", Build.MODEL, language))
        }
        model = SurveyViewModel(session)
        state = io { model!!.start() }
    }
    val s = state ?: return
    val m = model ?: return
    LazyColumn(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(6.dp)) {
        item { LinearProgressIndicator(progress = { s.completion }, Modifier.fillMaxWidth()) }
        items(s.prompts, key = { "${it.question}#${it.instance}" }) { p ->
            PromptView(p, s.problems[org.mpaka.demo.problemKey(p.question, p.instance)],
                answer = { v -> launch { state = io { m.answer(p.question, p.instance, v) } } },
                addRepeat = { launch { state = io { m.addRepeat(p.question, p.instance) } } })
        }
        item {
            Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                OutlinedButton(onClick = { launch { state = io { m.saveDraft() }; back() } }) { Text(stringResource(R.string.save_draft)) }
                Button(onClick = { launch { state = io { m.finalize() }; if (state?.saved == true) back() } }) {
                    Text(stringResource(R.string.finalize))
                }
            }
        }
    }
}

@Composable
fun PromptView(p: Prompt, problem: String?, answer: (String) -> Unit, addRepeat: () -> Unit) {
    Column {
        val title = p.label + if (p.required) " *" else ""
        when (p.kind) {
            "group" -> Text(p.label, style = MaterialTheme.typography.titleMedium)
            "repeat" -> Row { Text(p.label, style = MaterialTheme.typography.titleMedium); TextButton(addRepeat) { Text(stringResource(R.string.add_instance)) } }
            "note" -> Text(p.label)
            "select_one" -> {
                Text(title)
                p.choices.forEach { c ->
                    Row(Modifier.selectable(p.value == c.name, onClick = { answer(c.name) })) {
                        RadioButton(p.value == c.name, { answer(c.name) }); Text(c.label)
                    }
                }
            }
            "select_multiple" -> {
                Text(title)
                val chosen = p.value.split(' ').filter { it.isNotEmpty() }.toSet()
                p.choices.forEach { c ->
                    Row {
                        Checkbox(c.name in chosen, { on ->
                            answer((if (on) chosen + c.name else chosen - c.name).joinToString(" "))
                        })
                        Text(c.label)
                    }
                }
            }
            else -> {
                var text by remember(p.question, p.instance) { mutableStateOf(p.value) }
                OutlinedTextField(text, { text = it; answer(it) }, label = { Text(title) }, readOnly = p.readOnly,
                    supportingText = { if (p.hint.isNotEmpty()) Text(p.hint) })
            }
        }
        problem?.let { Text(it, color = MaterialTheme.colorScheme.error) }
    }
}

@Composable
fun RegistryScreen(app: App, back: () -> Unit) {
    var query by remember { mutableStateOf("") }
    var found by remember { mutableStateOf(emptyList<Trader>()) }
    LaunchedEffect(query) { found = io { app.store.searchTraders(query, 50u) } }
    Column(Modifier.padding(16.dp)) {
        OutlinedTextField(query, { query = it }, label = { Text(stringResource(R.string.search)) })
        LazyColumn { items(found) { t -> Text("${t.fullName} · ${t.phone ?: ""} · ${t.borderPost}") } }
        TextButton(back) { Text("←") }
    }
}

@Composable
fun AttendanceScreen(app: App, session: AwarenessSession, back: () -> Unit) {
    var query by remember { mutableStateOf("") }
    var found by remember { mutableStateOf(emptyList<Trader>()) }
    var attendees by remember { mutableStateOf(emptyList<Attendance>()) }
    val launch = rememberIo()
    val me = app.enrollment()?.username ?: ""
    LaunchedEffect(query) {
        found = io { app.store.searchTraders(query, 20u) }
        attendees = io { app.store.attendance(session.id) }
    }
    Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(6.dp)) {
        Text("${session.topic} · ${session.date} · ${attendees.size}", style = MaterialTheme.typography.titleMedium)
        OutlinedTextField(query, { query = it }, label = { Text(stringResource(R.string.search)) })
        LazyColumn {
            items(found) { t ->
                Row {
                    Text(t.fullName, Modifier.weight(1f))
                    TextButton(onClick = {
                        launch {
                            io { app.store.registerAttendance(session.id, Attendee.Trader(t.id), t.sex, me) }
                            attendees = io { app.store.attendance(session.id) }
                        }
                    }) { Text(stringResource(R.string.register)) }
                }
            }
        }
        TextButton(back) { Text("←") }
    }
}

@Composable
fun SyncScreen(app: App, back: () -> Unit) {
    var fraction by remember { mutableStateOf(0f) }
    var report by remember { mutableStateOf("") }
    var rejected by remember { mutableStateOf(emptyList<RejectedEdit>()) }
    var conflicts by remember { mutableStateOf(emptyList<ConflictRecord>()) }
    val cancel = remember { SyncCancel() }
    val launch = rememberIo()
    val enrollment = app.enrollment()
    Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
        LinearProgressIndicator(progress = { fraction }, Modifier.fillMaxWidth())
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            Button(onClick = {
                if (enrollment == null) return@Button
                launch {
                    val listener = object : SyncListener {
                        override fun onProgress(progress: SyncProgress) { fraction = progress.fraction.toFloat() }
                    }
                    report = describe(io { runSync(MpakaSyncClient(enrollment.serverUrl, null), app.store, enrollment.token, listener, cancel) })
                    rejected = io { app.store.rejectedEdits() }
                    conflicts = io { app.store.conflicts(true) }
                }
            }) { Text(stringResource(R.string.sync)) }
            OutlinedButton(onClick = { cancel.cancel() }) { Text("×") }
        }
        Text(report)
        rejected.forEach { Text("${it.collection}: ${it.code}: ${it.reason}", color = MaterialTheme.colorScheme.error) }
        conflicts.forEach { Text("${it.collection} ${it.field}: ${it.olderValueJson} / ${it.newerValueJson}") }
        TextButton(back) { Text("←") }
    }
}
