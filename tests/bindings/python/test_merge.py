"""An interview merges question by question (issue 15), end to end: the
generated Python bindings, the real library and a real `mpaka serve` over
HTTP, no mocks.

Two devices of one enumerator (her phone and her tablet: an enumerator
pulls her own interviews, so both hold them) correct the same trader
surveys offline, then sync. An M&E officer's device, which pulls every
interview, and the server's export and conflict queue are the officer's
view of the merged result.

- 100 interviews: each device corrects a different question (`age` on the
  phone, `income_band` on the tablet): both corrections stand everywhere,
  no conflict.
- 100 interviews: both correct `age`, differently: exactly one open
  conflict each, on `answers/age`, holding both values, the newer one
  standing.
- The `goods` repeat: different instances edited on the two devices, the
  same instance's different questions, and an instance removed on one
  device while edited on the other (exactly one conflict, on the
  instance's own field `answers/goods[<id>]`; nothing lost: the edit is in
  the assembled answers, or, when the removal is newer, comes back with
  the instance once an officer keeps the older value).
"""

import json
import time
import urllib.parse
import urllib.request

from conftest import PROJECT

FORM = "trader_survey"
PER_GROUP = 100
REPEAT_CASES = 5  # interviews per repeat variant


def context(mpaka, username, device):
    return mpaka.SessionContext(username=username, device_id=device, language="English (en)")


def client(mpaka, server):
    return mpaka.MpakaSyncClient(server.url, None)


def get(server, path):
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {server.admin_token}"})
    with urllib.request.urlopen(request) as response:
        return response.read().decode()


def export(server, table):
    """The server's export of `table` (JSON lines), as a list of rows."""
    text = get(server, f"/v1/projects/{PROJECT}/exports/{urllib.parse.quote(table)}.jsonl")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def server_conflicts(server):
    return json.loads(get(server, f"/v1/projects/{PROJECT}/conflicts"))


BASE = {
    "consent": "yes", "border_post": "rusizi_2", "side": "drc", "sex": "female", "nationality": "CD",
    "crossing_frequency": "daily", "documents": "jeton", "paid_fees": "yes", "fee_amount_rwf": "500",
    "harassment": "no", "income_band": "50k_100k",
}
GOODS = [("beans", "10000"), ("fish", "20000")]


def interview(mpaka, store, form_version, age, goods):
    """A complete trader survey with `goods` (good, value) instances; its id."""
    session = mpaka.MpakaFormSession.start(store, FORM, form_version, context(mpaka, "amina", "amina-phone"))
    for question, value in {**BASE, "age": str(age), "n_goods": str(len(goods))}.items():
        session.set_answer(question, [], value)
    for good, value in goods:
        n = session.add_repeat("goods", [])
        session.set_answer("good", [n], good)
        session.set_answer("value_rwf", [n], value)
    assert session.finalize() == []
    return session.submission_id()


def correct(mpaka, store, device, submission_id, edits, remove=None):
    """Resumes the interview on `device`, answers `edits` ((question,
    instance, value) triples), removes goods instance `remove` if given, and
    finalizes."""
    session = mpaka.MpakaFormSession.resume(store, submission_id, context(mpaka, "amina", device))
    if remove is not None:
        session.remove_repeat("goods", [remove])
    for question, instance, value in edits:
        at = [] if instance is None else [instance]
        problems = [p for p in session.set_answer(question, at, value) if p.question == question]
        assert problems == [], (question, value, problems)
    assert session.finalize() == [], (submission_id, edits, remove)


def answers(store):
    """Every interview's assembled answers on a device, by id."""
    return {s.id: json.loads(s.answers_json) for s in store.submissions()}


def by_entity(conflicts):
    out = {}
    for c in conflicts:
        out.setdefault(c.entity_id, []).append(c)
    return out


def test_an_interview_merges_question_by_question(mpaka, server, tmp_path):
    started = time.monotonic()
    phone = mpaka.MpakaStore.open(str(tmp_path / "phone.mpaka"), None)
    tablet = mpaka.MpakaStore.open(str(tmp_path / "tablet.mpaka"), None)
    officer = mpaka.MpakaStore.open(str(tmp_path / "officer.mpaka"), None)
    phone_token = client(mpaka, server).enroll(phone, server.enrollment_code("amina", "enumerator"), "phone").token
    # A second device of the same account: a second enrollment code.
    second_code = server.api(f"/v1/projects/{PROJECT}/enrollments", {"username": "amina"})["code"]
    tablet_token = client(mpaka, server).enroll(tablet, second_code, "tablet").token
    officer_token = client(mpaka, server).enroll(officer, server.enrollment_code("me01", "me_officer"), "laptop").token
    tokens = {id(phone): phone_token, id(tablet): tablet_token, id(officer): officer_token}

    offsets = {}  # server time minus the device's, as each last learned it (ms)

    def sync(store):
        summary = client(mpaka, server).sync(store, tokens[id(store)], None, None)
        assert summary.rejected == [], summary.rejected
        offsets[id(store)] = summary.clock_offset_ms or 0
        return summary

    def after(earlier, later):
        """Waits until `later`'s stamps (its clock corrected by its offset)
        are past those `earlier` wrote until now, whatever their offsets."""
        time.sleep(max(0, offsets[id(earlier)] - offsets[id(later)]) / 1000 + 0.02)

    sync(phone)
    version = {f.form_id: f for f in phone.forms()}[FORM].version

    # The phone records every interview; the tablet and the officer pull them.
    different = [interview(mpaka, phone, version, 20 + i % 40, GOODS[:1]) for i in range(PER_GROUP)]
    same = [interview(mpaka, phone, version, 20 + i % 40, GOODS[:1]) for i in range(PER_GROUP)]
    other_instances = [interview(mpaka, phone, version, 30, GOODS) for _ in range(REPEAT_CASES)]
    same_instance = [interview(mpaka, phone, version, 30, GOODS) for _ in range(REPEAT_CASES)]
    edit_after_removal = [interview(mpaka, phone, version, 30, GOODS) for _ in range(REPEAT_CASES)]
    removal_after_edit = [interview(mpaka, phone, version, 30, GOODS) for _ in range(REPEAT_CASES)]
    everything = different + same + other_instances + same_instance + edit_after_removal + removal_after_edit
    sync(phone)
    assert phone.pending_count() == 0
    sync(tablet)
    sync(officer)
    assert set(answers(tablet)) == set(answers(officer)) == set(everything)
    created = answers(phone)
    goods_ids = {s: [g["@id"] for g in created[s]["goods"]] for s in everything}
    assert all(len(ids) == len(set(ids)) for ids in goods_ids.values())

    # Offline, each on its device. The tablet's corrections are made after
    # the phone's (later clocks), except the last removals, made after the
    # tablet's edit of the same instance.
    phone_age = {s: 60 + i % 30 for i, s in enumerate(different + same)}
    tablet_age = {s: phone_age[s] + 1 for s in same}
    for s in different + same:
        correct(mpaka, phone, "amina-phone", s, [("age", None, str(phone_age[s]))])
    for s in other_instances:
        correct(mpaka, phone, "amina-phone", s, [("value_rwf", 1, "11000")])
    for s in same_instance:
        correct(mpaka, phone, "amina-phone", s, [("value_rwf", 1, "12000")])
    for s in edit_after_removal:
        correct(mpaka, phone, "amina-phone", s, [("n_goods", None, "1")], remove=2)

    after(phone, tablet)
    for s in different:
        correct(mpaka, tablet, "amina-tablet", s, [("income_band", None, "100k_200k")])
    for s in same:
        correct(mpaka, tablet, "amina-tablet", s, [("age", None, str(tablet_age[s]))])
    for s in other_instances:
        correct(mpaka, tablet, "amina-tablet", s, [("value_rwf", 2, "21000")])
    for s in same_instance:
        correct(mpaka, tablet, "amina-tablet", s, [("quantity_kg", 1, "25")])
    for s in edit_after_removal + removal_after_edit:
        correct(mpaka, tablet, "amina-tablet", s, [("value_rwf", 2, "23000")])

    after(tablet, phone)
    for s in removal_after_edit:
        correct(mpaka, phone, "amina-phone", s, [("n_goods", None, "1")], remove=2)

    for _ in range(2):
        sync(phone)
        sync(tablet)
    sync(officer)
    assert phone.pending_count() == tablet.pending_count() == 0

    replicas = {"phone": phone, "tablet": tablet, "officer": officer}
    merged = {name: answers(store) for name, store in replicas.items()}
    conflicts = {name: by_entity(store.conflicts(False)) for name, store in replicas.items()}
    open_conflicts = {name: by_entity(store.conflicts(True)) for name, store in replicas.items()}
    on_server = {}
    for c in server_conflicts(server):
        on_server.setdefault(c["entity"], []).append(c)
    rows = {r["submission_id"]: r for r in export(server, FORM)}
    goods_rows = {}
    for r in sorted(export(server, f"{FORM}__goods"), key=lambda r: r["repeat_index"]):
        goods_rows.setdefault(r["submission_id"], []).append(r)

    # All replicas agree on every interview's merged answers.
    for s in everything:
        assert merged["phone"][s] == merged["tablet"][s] == merged["officer"][s], s

    # Different questions: both corrections stand, no conflict anywhere.
    kept_both = 0
    for s in different:
        for name in replicas:
            a = merged[name][s]
            assert (a["age"], a["income_band"]) == (phone_age[s], "100k_200k"), (name, s, a)
            assert s not in conflicts[name], (name, s, conflicts[name].get(s))
        assert s not in on_server, on_server[s]
        assert (int(rows[s]["age"]), rows[s]["income_band"]) == (phone_age[s], "100k_200k"), rows[s]
        kept_both += 1
    assert kept_both == PER_GROUP

    # The same question: exactly one open conflict, both values held, the
    # newer (the tablet's) standing.
    one_conflict = 0
    for s in same:
        both = {phone_age[s], tablet_age[s]}
        for name in replicas:
            held = open_conflicts[name].get(s, [])
            assert len(held) == 1 and held[0].field == "answers/age", (name, s, held)
            assert held[0].collection == "submissions" and not held[0].resolved
            older, newer = json.loads(held[0].older_value_json), json.loads(held[0].newer_value_json)
            assert {older, newer} == both, (name, s, older, newer)
            assert merged[name][s]["age"] == newer == tablet_age[s], (name, s, merged[name][s]["age"])
            assert [c.field for c in conflicts[name][s]] == ["answers/age"]
        held = on_server.get(s, [])
        assert len(held) == 1 and held[0]["field"] == "answers/age", (s, held)
        assert {held[0]["older_value"], held[0]["newer_value"]} == both
        assert int(rows[s]["age"]) == held[0]["newer_value"] == tablet_age[s]
        one_conflict += 1
    assert one_conflict == PER_GROUP

    def goods(name, s):
        return {g["@id"]: g for g in merged[name][s].get("goods", [])}

    # Different instances of `goods`: both edits stand, no conflict.
    for s in other_instances:
        first, second = goods_ids[s]
        for name in replicas:
            g = goods(name, s)
            assert list(g) == [first, second], (name, s, g)
            assert (g[first]["value_rwf"], g[second]["value_rwf"]) == (11000, 21000), (name, s, g)
            assert s not in conflicts[name], (name, s, conflicts[name].get(s))
        assert s not in on_server
        assert [int(r["value_rwf"]) for r in goods_rows[s]] == [11000, 21000], goods_rows[s]

    # The same instance, different questions: both stand, no conflict.
    for s in same_instance:
        first, second = goods_ids[s]
        for name in replicas:
            g = goods(name, s)
            assert list(g) == [first, second], (name, s, g)
            assert (g[first]["value_rwf"], g[first]["quantity_kg"]) == (12000, 25), (name, s, g)
            assert g[second]["value_rwf"] == 20000
            assert s not in conflicts[name], (name, s, conflicts[name].get(s))
        assert s not in on_server
        exported = [(int(r["value_rwf"]), r["quantity_kg"] and float(r["quantity_kg"])) for r in goods_rows[s]]
        assert exported == [(12000, 25.0), (20000, None)], goods_rows[s]

    # Removed on the phone, edited on the tablet: exactly one conflict, on
    # the instance's own field, its order against null.
    def one_instance_conflict(s, removal_newer):
        second = goods_ids[s][1]
        field = f"answers/goods[{second}]"
        for name in replicas:
            held = open_conflicts[name].get(s, [])
            seen = [(c.field, c.older_value_json, c.newer_value_json) for c in held]
            assert [c.field for c in held] == [field], (name, s, seen)
            older, newer = json.loads(held[0].older_value_json), json.loads(held[0].newer_value_json)
            removal, edit = (newer, older) if removal_newer else (older, newer)
            assert removal is None and isinstance(edit, (int, float)), (name, s, older, newer)
            assert [c.field for c in conflicts[name][s]] == [field]
        held = on_server.get(s, [])
        assert [c["field"] for c in held] == [field], (s, held)
        return held[0]

    # The edit is newer: the instance stands, with the edit.
    for s in edit_after_removal:
        one_instance_conflict(s, removal_newer=False)
        first, second = goods_ids[s]
        for name in replicas:
            g = goods(name, s)
            assert list(g) == [first, second] and g[second]["value_rwf"] == 23000, (name, s, g)
        assert [int(r["value_rwf"]) for r in goods_rows[s]] == [10000, 23000], goods_rows[s]

    # The removal is newer: the instance is gone from the answers, its
    # answers kept under it. An officer keeps the older value (the
    # instance's order): it comes back, with the tablet's edit.
    resolutions = []
    for s in removal_after_edit:
        resolutions.append(one_instance_conflict(s, removal_newer=True)["id"])
        for name in replicas:
            assert list(goods(name, s)) == goods_ids[s][:1], (name, s, goods(name, s))
        assert [int(r["value_rwf"]) for r in goods_rows[s]] == [10000], goods_rows[s]
    for conflict_id in resolutions:
        server.api(f"/v1/projects/{PROJECT}/conflicts/{conflict_id}/resolve", {"keep": "older"})
    for store in replicas.values():
        sync(store)
    for s in removal_after_edit:
        first, second = goods_ids[s]
        restored = [answers(store)[s] for store in replicas.values()]
        assert restored[0] == restored[1] == restored[2], (s, restored)
        g = {x["@id"]: x for x in restored[0]["goods"]}
        assert list(g) == [first, second] and g[second]["value_rwf"] == 23000, (s, g)
        for store in replicas.values():
            assert s not in by_entity(store.conflicts(True))
        assert s not in {c["entity"] for c in server_conflicts(server)}
    restored_rows = {}
    for r in sorted(export(server, f"{FORM}__goods"), key=lambda r: r["repeat_index"]):
        restored_rows.setdefault(r["submission_id"], []).append(int(r["value_rwf"]))
    assert all(restored_rows[s] == [10000, 23000] for s in removal_after_edit), restored_rows

    elapsed = time.monotonic() - started
    print(f"\nmerge test: {kept_both}/{PER_GROUP} kept both, {one_conflict}/{PER_GROUP} one conflict, {elapsed:.1f} s")
    assert elapsed < 60, elapsed
