"""Sync through the app's own HTTP stack (here Python's urllib, as an app
would pass OkHttp or URLSession): the library's `HttpClient` foreign trait,
against a real `mpaka serve`, next to a phone on the bundled stack."""

import os
import urllib.error
import urllib.request

import pytest
from records import trader


def urllib_client(mpaka):
    class UrllibHttp(mpaka.HttpClient):
        def __init__(self):
            self.requests = []

        def post(self, request):
            self.requests.append(request.url)
            headers = {h.name: h.value for h in request.headers}
            sent = urllib.request.Request(request.url, data=bytes(request.body), method="POST", headers=headers)
            try:
                with urllib.request.urlopen(sent, timeout=30) as answer:  # noqa: S310 - the test server's URL
                    return mpaka.HttpResponse(
                        status=answer.status,
                        headers=[mpaka.HttpHeader(name=k, value=v) for k, v in answer.getheaders()],
                        body=answer.read(),
                    )
            except urllib.error.HTTPError as refused:
                return mpaka.HttpResponse(
                    status=refused.code,
                    headers=[mpaka.HttpHeader(name=k, value=v) for k, v in refused.headers.items()],
                    body=refused.read(),
                )
            except (urllib.error.URLError, OSError) as failed:
                raise mpaka.HttpError.Connect(reason=str(failed)) from failed

    return UrllibHttp()


def registered(mpaka, name, phone):
    return trader(mpaka, name, phone, year_of_birth=None, age_band="25_34", main_goods=["fish"], border_post="rusizi_1")


def test_a_phone_syncs_through_the_apps_http_stack(mpaka, server, tmp_path):
    http = urllib_client(mpaka)
    options = mpaka.SyncOptions(batch_kib=16, max_retries=2, request_timeout_seconds=30)
    app = mpaka.MpakaSyncClient.with_http(server.url, options, http)
    phone = mpaka.MpakaStore.open(str(tmp_path / "app-http.mpaka"), os.urandom(32))
    token = app.enroll(phone, server.enrollment_code("neema", "enumerator"), "Itel A56").token
    trader_id = phone.save_trader(registered(mpaka, "Mukamana Josée", "+243 970 123 456"))

    summary = app.sync(phone, token, None, None)
    assert summary.pushed == 1, summary
    assert phone.pending_count() == 0
    assert len(http.requests) >= 2, "enrollment and at least one exchange went through the app's client"
    assert all(url.startswith(server.url) for url in http.requests)

    # An officer on the bundled stack receives it, and finds her as an
    # enumerator would type her name or the end of her number.
    officer = mpaka.MpakaStore.open(str(tmp_path / "bundled.mpaka"), os.urandom(32))
    bundled = mpaka.MpakaSyncClient(server.url, options)
    officer_token = bundled.enroll(officer, server.enrollment_code("me02", "me_officer"), "laptop").token
    bundled.sync(officer, officer_token, None, None)
    assert [t.id for t in officer.search_traders("josee", 10)] == [trader_id]
    assert [t.id for t in officer.search_traders("3456", 10)] == [trader_id]


def test_the_apps_http_failures_are_retried_then_told_and_nothing_is_lost(mpaka, server, tmp_path):
    http = urllib_client(mpaka)
    phone = mpaka.MpakaStore.open(str(tmp_path / "offline.mpaka"), os.urandom(32))
    token = mpaka.MpakaSyncClient(server.url, None).enroll(
        phone, server.enrollment_code("furaha", "enumerator"), "phone"
    ).token
    phone.save_trader(registered(mpaka, "Bahati Espérance", None))
    closed = mpaka.MpakaSyncClient.with_http("http://127.0.0.1:9", mpaka.SyncOptions(batch_kib=None, max_retries=1, request_timeout_seconds=None), http)
    with pytest.raises(mpaka.MpakaError.Network) as refused:
        closed.sync(phone, token, None, None)
    assert "could not connect" in str(refused.value)
    assert len(http.requests) == 2, "tried, then retried once"
    assert phone.pending_count() == 1, "the edit waits for the next sync"
