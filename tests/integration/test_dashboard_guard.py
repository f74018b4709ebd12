"""The guarded dashboard on the devstack: bearer token (401/200) on every API and stream path,
security headers on every response, parameters validated; and in a real browser (Chromium) the
page asks for the token once, keeps it for the tab, follows a shop live under the policy."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from dashboard.guard import CSP
from tests.integration.live import (
    DashboardServer,
    Worker,
    fold_lines,
    produce_lines,
    running_worker,
    settings_for,
)
from tests.integration.test_dashboard import ARTIFACTS, SCENARIOS, launch_chromium

pytestmark = pytest.mark.integration
TOKEN = "t0ken-" + "a1b2c3d4" * 4
API_PATHS = ["/api/shops", "/api/shops/Q", "/api/shops/Q/history", "/api/platform",
             "/api/shops/Q/events", "/api/platform/events"]
SECURITY = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Content-Security-Policy": CSP}


class Guarded:
    def __init__(self, worker: Worker, dashboard: DashboardServer, lines: bytes, settings: Any) -> None:
        self.worker, self.dashboard, self.lines, self.settings = worker, dashboard, lines, settings


@pytest.fixture(scope="module")
def guarded(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    # one Redis (not the cluster too): the guard sits in front of the reads, test_dashboard.py covers both
    lines = (SCENARIOS / "seed001_recruitment_quality" / "input.jsonl").read_bytes()
    s = settings_for(kafka_bootstrap, redis_url, f"t{os.urandom(4).hex()}-guard")
    logs = tmp_path_factory.mktemp("guard")
    with running_worker(s, logs, redis_url, "guard") as w:
        d = DashboardServer(s, logs, token=TOKEN).start()
        try:
            fold_lines([w], s, lines)
            yield Guarded(w, d, lines, s)
        finally:
            d.stop()


def request(url: str, auth: str | None = None, read: bool = True) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and (unless a stream) body of a GET."""
    req = urllib.request.Request(url)
    if auth is not None:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read() if read else r.read(1)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.parametrize("path", API_PATHS)
def test_every_api_and_stream_path_needs_the_token(guarded: Guarded, path: str) -> None:
    url = guarded.dashboard.url + path
    for auth in (None, "Bearer wrong-token-of-some-length", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "):
        status, headers, body = request(url, auth)
        assert status == 401, (path, auth)
        assert headers["WWW-Authenticate"] == 'Bearer realm="tierstream"'
        assert "access token" in orjson.loads(body)["error"] and TOKEN not in body.decode()
        assert {k: headers.get(k) for k in SECURITY} == SECURITY
    stream = path.endswith("/events")
    status, headers, body = request(url, f"Bearer {TOKEN}", read=not stream)
    assert status == 200, (path, body)
    assert {k: headers.get(k) for k in SECURITY} == SECURITY
    if stream:
        assert headers["Content-Type"] == "text/event-stream"
    else:
        assert headers["Cache-Control"] == "no-store" and orjson.loads(body)


def test_the_page_its_files_and_health_are_open_with_headers(guarded: Guarded) -> None:
    base = guarded.dashboard.url
    status, headers, page = request(base + "/")
    assert status == 200 and {k: headers.get(k) for k in SECURITY} == SECURITY
    assert headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert b"<script>" not in page and b'<script src="/static/dashboard.js"' in page and b" style=" not in page
    status, headers, js = request(base + "/static/dashboard.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript") and b"Bearer" in js
    status, headers, _ = request(base + "/static/dashboard.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    assert request(base + "/static/dashboard.html")[0] == 404  # only the two files
    assert request(base + "/static/..%2fdashboard.py")[0] == 404
    status, headers, body = request(base + "/health")
    assert status == 200 and orjson.loads(body)["status"] == "ok" and headers["X-Content-Type-Options"] == "nosniff"
    status, headers, _ = request(base + "/no-such-path")
    assert status == 404 and headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("path, reason", [
    ("/api/shops/a:b", "malformed shop id"), ("/api/shops/%7Bx%7D", "malformed shop id"),
    ("/api/shops/a%0Ab/history", "malformed shop id"), ("/api/shops/" + "x" * 129, "malformed shop id"),
    ("/api/shops/a%09b/events", "malformed shop id"),
    ("/api/shops?limit=0", "limit"), ("/api/shops?limit=1001", "limit"), ("/api/shops?limit=%2B5", "limit"),
    ("/api/shops?limit=5.0", "limit"), ("/api/shops?limit=", "limit"), ("/api/shops?prefix=a:b", "prefix"),
    ("/api/shops?prefix=" + "q" * 129, "prefix"),
])
def test_bad_ids_and_parameters_are_400_with_one_line(guarded: Guarded, path: str, reason: str) -> None:
    status, body = guarded.dashboard.get(path)
    assert status == 400 and reason in body["error"] and "\n" not in body["error"], body


def test_limit_bounds_the_answer(guarded: Guarded) -> None:
    status, body = guarded.dashboard.get("/api/shops?limit=1")
    assert status == 200 and len(body["shops"]) == 1
    status, body = guarded.dashboard.get("/api/shops?limit=1000&prefix=Q")
    assert status == 200 and body["shops"] == ["Q"]


def test_a_short_token_is_refused_at_start(guarded: Guarded, tmp_path: Path) -> None:
    d = DashboardServer(guarded.settings, tmp_path, token="short")
    with pytest.raises(AssertionError, match="at least 16 printable ASCII"):
        d.start(timeout=20)
    assert d.proc is not None and d.proc.wait(10) == 2
    assert "short" not in d.log.read_text().replace("shorter", "")


def test_browser_asks_for_the_token_once_and_follows_a_shop(guarded: Guarded) -> None:
    """The page shows the token form (401), refuses a wrong token, keeps the right one in session
    storage only, loads the platform and a shop, and takes a live update over the fetch stream.
    The policy blocks an injected inline script; data is shown as text, never as markup."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            violations: list[str] = []
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            response = page.goto(guarded.dashboard.url + "/#Q")
            assert response is not None and response.headers["content-security-policy"] == CSP
            assert response.headers["x-content-type-options"] == "nosniff"
            expect(page.locator("#auth")).to_be_visible()
            expect(page.locator("#main")).to_be_hidden()
            page.screenshot(path=str(ARTIFACTS / "dashboard-token.png"))

            page.fill("#auth-token", "not-the-token-at-all")
            page.press("#auth-token", "Enter")
            expect(page.locator("#auth-error")).to_have_text("That token was refused.")
            assert page.evaluate("sessionStorage.getItem('tierstream-dashboard-token')") is None

            page.fill("#auth-token", TOKEN)
            page.click("#auth-go")
            expect(page.locator("#platform-table tbody")).to_contain_text("rq")
            expect(page.locator("#shop-title")).to_contain_text("Q")
            assert page.evaluate("sessionStorage.getItem('tierstream-dashboard-token')") == TOKEN
            assert page.evaluate("localStorage.length") == 0 and not context.cookies()
            share = page.locator('[data-indicator="member_gmv_share"] .value')
            expect(share).to_have_text("0.0%")
            fill = page.locator('[data-indicator="member_gmv_share"] .fill')
            assert fill.evaluate("e => e.style.width") == "0%"  # sized through the style object

            # the same tab reloaded keeps the token; a new tab (its own session storage) asks again
            page.reload()
            expect(page.locator("#platform-table tbody")).to_contain_text("rq")
            other = context.new_page()
            other.goto(guarded.dashboard.url + "/")
            expect(other.locator("#auth")).to_be_visible()
            other.close()

            last_ts = max(orjson.loads(ln)["ts"] for ln in guarded.lines.splitlines() if ln.strip())
            order = {"event_id": f"guard-{time.time_ns()}", "type": "order_paid", "ts": last_ts + 3_600_000,
                     "shop_id": "Q", "order_id": "guard-o1", "user_id": "n5", "amount_cents": 10_000}
            with ThreadPoolExecutor(1) as pool:  # playwright's sync API holds this thread's event loop
                pool.submit(produce_lines, guarded.settings, orjson.dumps(order) + b"\n").result()
            expect(share).to_have_text("100.0%", timeout=30_000)  # over the authenticated stream, no reload
            assert fill.evaluate("e => e.style.width") != "0%"
            page.screenshot(path=str(ARTIFACTS / "dashboard-guarded.png"), full_page=True)

            # an inline script is refused by the policy; markup in data stays text
            page.evaluate("""() => { const s = document.createElement('script');
                s.textContent = 'window.injected = 1'; document.body.appendChild(s); }""")
            assert page.evaluate("window.injected") is None
            assert any("Content Security Policy" in v for v in violations), violations
            page.evaluate("""() => renderPlatform({namespace: 'n', shops: 1, watermark: null, last_closed: null,
                totals: {premium: 1}, tiers: {'<img id=x src=y>': {premium: 1}}})""")
            expect(page.locator("#platform-table tbody")).to_contain_text("<img id=x src=y>")
            assert page.locator("#x").count() == 0
        finally:
            browser.close()
