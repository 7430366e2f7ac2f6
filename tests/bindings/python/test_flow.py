"""The whole flow through the generated Python bindings and the real
library, against a real `mpaka serve`: encrypted stores, enrollment, forms
received by sync, a survey filled through the form session (validation
errors and a repeat group), a trader registered at an awareness session,
edits on two phones, and the converged result with its conflict."""

import json
import os
import threading
import time

import pytest
from records import trader


def context(mpaka, username):
    return mpaka.SessionContext(username=username, device_id=f"{username}-phone", language="English (en)")


def client(mpaka, server):
    # Small exchanges, as on 2G: the flow spans several of them.
    return mpaka.MpakaSyncClient(server.url, mpaka.SyncOptions(batch_kib=16, max_retries=2, request_timeout_seconds=30))


def make_listener(mpaka):
    class Recorder(mpaka.SyncListener):
        def __init__(self):
            self.seen = []

        def on_progress(self, progress):
            self.seen.append(progress)

    return Recorder()


def test_field_day_through_the_bindings(mpaka, server, tmp_path):
    # Two phones, encrypted with 32 random bytes each (the Keystore's job on Android).
    amina = mpaka.MpakaStore.open(str(tmp_path / "amina.mpaka"), os.urandom(32))
    officer = mpaka.MpakaStore.open(str(tmp_path / "officer.mpaka"), os.urandom(32))
    with pytest.raises(mpaka.MpakaError.WrongKey):
        mpaka.MpakaStore.open(str(tmp_path / "amina.mpaka"), os.urandom(32))

    amina_enrolled = client(mpaka, server).enroll(amina, server.enrollment_code("amina", "enumerator"), "Tecno Spark")
    assert amina_enrolled.role == mpaka.Role.ENUMERATOR and amina_enrolled.project == "rusizi-bukavu"
    with pytest.raises(mpaka.MpakaError.Forbidden):
        client(mpaka, server).enroll(officer, "WRONG-CODE-0000", "x")
    officer_enrolled = client(mpaka, server).enroll(officer, server.enrollment_code("me01", "me_officer"), "Office laptop")

    # The first sync brings the project's forms.
    listener = make_listener(mpaka)
    summary = client(mpaka, server).sync(amina, amina_enrolled.token, listener, None)
    assert summary.forms_received == 2
    assert listener.seen and listener.seen[-1].fraction == 1.0
    forms = {f.form_id: f for f in amina.forms()}
    survey = forms["trader_survey"]
    assert "Français (fr)" in survey.languages

    # Register a trader and an awareness session; count her attendance.
    trader_id = amina.save_trader(trader(mpaka, "Mwamini Furaha", "+243970000001"))
    session_id = amina.save_session(
        mpaka.AwarenessSession(
            id="", topic="ebola", topic_other=None, date="2026-11-27", border_post="rusizi_2",
            side="drc", facilitator="amina", language="sw",
        )
    )
    row = amina.register_attendance(session_id, mpaka.Attendee.TRADER(trader_id=trader_id), "female", "amina")
    again = amina.register_attendance(session_id, mpaka.Attendee.TRADER(trader_id=trader_id), "female", "amina")
    assert row.id == again.id and len(amina.attendance(session_id)) == 1
    amina.register_attendance(session_id, mpaka.Attendee.WALK_IN(name_or_code="walk-in 7"), "male", "amina")

    # Fill the trader survey through the form session.
    interview = mpaka.MpakaFormSession.start(amina, "trader_survey", survey.version, context(mpaka, "amina"))
    interview.set_trader(trader_id)
    answers = {
        "consent": "yes", "border_post": "rusizi_2", "side": "drc", "sex": "female", "nationality": "CD",
        "crossing_frequency": "daily", "n_goods": "1", "documents": "jeton", "paid_fees": "yes",
        "harassment": "no", "income_band": "50k_100k",
    }
    for question, value in answers.items():
        # Problems of the questions the answer affected (now-relevant required
        # ones), never of the answer itself.
        problems = interview.set_answer(question, [], value)
        assert question not in {p.question for p in problems}, (question, problems)
    # A constraint breaks: the problem names the question and the rule's message.
    problems = [p for p in interview.set_answer("age", [], "7") if p.question == "age"]
    assert len(problems) == 1 and "12" in problems[0].reason, problems
    # Not yet complete: finalize refuses and says why, saving nothing.
    refused = interview.finalize()
    assert {"age", "fee_amount_rwf"} <= {p.question for p in refused}
    assert amina.submissions() == []
    interview.set_answer("age", [], "34")
    interview.set_answer("fee_amount_rwf", [], "500")
    # A repeat group: one kind of goods.
    assert interview.add_repeat("goods", []) == 1
    interview.set_answer("good", [1], "fish")
    interview.set_answer("value_rwf", [1], "30000")
    with pytest.raises(mpaka.MpakaError.InvalidInput):
        interview.set_answer("good", [2], "beans")  # there is no second instance
    prompts = {p.question: p for p in interview.prompts()}
    assert prompts["good"].instance == [1] and prompts["good"].value == "fish"
    assert [c.name for c in prompts["paid_fees"].choices] == ["yes", "no"]
    assert interview.finalize() == []
    submission = amina.get_submission(interview.submission_id())
    assert submission.status == mpaka.SubmissionStatus.COMPLETE and submission.trader_id == trader_id
    saved = json.loads(submission.answers_json)
    assert saved["fee_amount_rwf"] == 500
    assert str(saved["total_value_rwf"]) in ("30000", "30000.0"), saved["total_value_rwf"]
    assert saved["goods"][0]["good"] == "fish"

    assert client(mpaka, server).sync(amina, amina_enrolled.token, None, None).rejected == []
    assert amina.pending_count() == 0
    client(mpaka, server).sync(officer, officer_enrolled.token, None, None)
    assert len(officer.submissions()) == 1, "the officer's phone holds every interview"
    assert len(officer.attendance(session_id)) == 2

    # Both phones correct the trader's phone number offline.
    on_amina = amina.get_trader(trader_id)
    on_amina.phone = "+250788000002"
    amina.save_trader(on_amina)
    on_officer = officer.get_trader(trader_id)
    on_officer.phone = "+243970000003"
    officer.save_trader(on_officer)
    for _ in range(2):
        client(mpaka, server).sync(amina, amina_enrolled.token, None, None)
        client(mpaka, server).sync(officer, officer_enrolled.token, None, None)
    assert amina.get_trader(trader_id) == officer.get_trader(trader_id), "converged"
    conflicts = officer.conflicts(True)
    assert len(conflicts) == 1 and conflicts[0].field == "phone"
    assert {json.loads(conflicts[0].older_value_json), json.loads(conflicts[0].newer_value_json)} == {
        "+250788000002", "+243970000003"}
    assert [c.field for c in amina.conflicts(True)] == ["phone"]

    # The officer resolves it; the resolution syncs to Amina's phone.
    officer.resolve_conflict(conflicts[0].id, json.dumps("+250788000002"))
    client(mpaka, server).sync(officer, officer_enrolled.token, None, None)
    client(mpaka, server).sync(amina, amina_enrolled.token, None, None)
    assert amina.conflicts(True) == [] and officer.conflicts(True) == []
    assert amina.get_trader(trader_id).phone == "+250788000002"


def test_sync_reports_errors_and_can_be_cancelled(mpaka, server, tmp_path):
    store = mpaka.MpakaStore.open(str(tmp_path / "p.mpaka"), os.urandom(32))
    with pytest.raises(mpaka.MpakaError.Unauthorized):
        client(mpaka, server).sync(store, "mpk_not-a-token", None, None)
    token = client(mpaka, server).enroll(store, server.enrollment_code("baraka", "enumerator"), "phone").token
    cancel = mpaka.SyncCancel()
    cancel.cancel()
    with pytest.raises(mpaka.MpakaError.Cancelled):
        client(mpaka, server).sync(store, token, None, cancel)
    with pytest.raises(mpaka.MpakaError.InvalidInput):
        mpaka.MpakaSyncClient("not a url", None).sync(store, token, None, None)
    # Cancelled from another thread while it waits to retry a server that is
    # not there: it stops within moments instead of retrying for seconds.
    cancel = mpaka.SyncCancel()
    outcome = {}

    def run():
        started = time.monotonic()
        try:
            mpaka.MpakaSyncClient("http://127.0.0.1:9", None).sync(store, token, None, cancel)
        except mpaka.MpakaError as e:  # noqa: PERF203
            outcome["error"] = e
        outcome["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.3)
    cancel.cancel()
    worker.join(timeout=10)
    assert isinstance(outcome.get("error"), mpaka.MpakaError.Cancelled), outcome
    assert outcome["seconds"] < 2, outcome
    # From several threads at once: calls are serialized inside.
    errors = []

    def register(n):
        try:
            store.save_trader(trader(mpaka, f"Trader {n}", f"+2507880000{n:02d}"))
        except Exception as e:  # noqa: BLE001 - the test reports any failure
            errors.append(e)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.search_traders("trader", 100)) == 20
