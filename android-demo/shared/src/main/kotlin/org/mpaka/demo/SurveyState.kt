package org.mpaka.demo

import org.mpaka.core.AnswerProblem
import org.mpaka.core.MpakaFormSession
import org.mpaka.core.Prompt

/**
 * What the survey screen shows: the questions that apply now, the problem
 * of each answer, and whether the interview can be finalized. The Compose
 * screen renders it; this class holds no Android types so that it is tested
 * on the JVM.
 */
data class SurveyState(
    val prompts: List<Prompt>,
    val problems: Map<String, String>,
    val answeredRequired: Int,
    val required: Int,
    val saved: Boolean = false,
) {
    /** Fraction of the required questions answered, for the progress bar. */
    val completion: Float get() = if (required == 0) 1f else answeredRequired.toFloat() / required

    /** Whether "Finalize" should be enabled (the library checks again). */
    val canFinalize: Boolean get() = !saved && problems.isEmpty() && answeredRequired == required
}

/** Key of a problem: the question, and the repeat instance if any. */
fun problemKey(question: String, instance: List<UInt>): String =
    question + instance.joinToString("") { "[$it]" }

/**
 * The survey screen's logic around one [MpakaFormSession]: every action
 * calls the library (off the main thread in the app) and returns the next
 * state.
 */
class SurveyViewModel(private val session: MpakaFormSession) {
    private var problems: Map<String, String> = emptyMap()

    /** The state before any answer. */
    fun start(): SurveyState = state()

    /** Answers a question; problems of every affected question are refreshed. */
    fun answer(question: String, instance: List<UInt>, value: String): SurveyState {
        val affected = session.setAnswer(question, instance, value)
        val touched = affected.map { problemKey(it.question, it.instance) }.toSet() +
            problemKey(question, instance)
        problems = problems.filterKeys { it !in touched } + shown(affected)
        return state()
    }

    /**
     * Adds an instance to a repeat group, within the instances of the
     * repeats around it (the repeat's prompt's `instance`).
     */
    fun addRepeat(repeat: String, within: List<UInt> = emptyList()): SurveyState {
        session.addRepeat(repeat, within)
        return state()
    }

    /** Saves as draft (the enumerator can come back to it). */
    fun saveDraft(): SurveyState {
        session.saveDraft()
        return state()
    }

    /** Finalizes: saved when valid, else every problem is shown. */
    fun finalize(): SurveyState {
        val refused = session.finalize()
        problems = shown(refused)
        return state(saved = refused.isEmpty())
    }

    private fun shown(list: List<AnswerProblem>): Map<String, String> =
        list.associate { problemKey(it.question, it.instance) to it.reason }

    private fun state(saved: Boolean = false): SurveyState {
        val prompts = session.prompts()
        val required = prompts.filter { it.required && !it.readOnly && it.kind != "group" && it.kind != "repeat" }
        // Problems of questions that no longer apply are not shown.
        val visible = prompts.map { problemKey(it.question, it.instance) }.toSet()
        return SurveyState(
            prompts = prompts,
            problems = problems.filterKeys { it in visible },
            answeredRequired = required.count { it.value.isNotEmpty() },
            required = required.size,
            saved = saved,
        )
    }
}
