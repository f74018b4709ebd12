"""The dashboard on the devstack: the HTTP API against the state after processing a scenario,
and a real browser (the system's Chromium) following a shop live."""

from __future__ import annotations

import io
import os
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from plumbing.settings import Settings
from replay.file import replay_lines
from tests.integration.live import (
    ROOT,
    DashboardServer,
    Worker,
    delete_namespace,
    fold_lines,
    produce_lines,
    settings_for,
)
from tiering.fold import Folder
from tiering.outputs import Output
from tiering.params import RuleParams
from tiering.view import shop_view

pytestmark = pytest.mark.integration
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios" / "public"  # a copy of ../shared/scenarios
ARTIFACTS = Path(os.environ.get("TIERSTREAM_ARTIFACTS", ROOT / "artifacts"))
LIVE_ONLY = ("partition", "status", "event_time", "watermark")


def file_form(lines: bytes) -> tuple[list[Output], dict[str, dict[str, Any]]]:
    """The file form's outputs and, from its final memory state, every shop's read model."""
    folder = Folder(RuleParams())
    store = folder.new_store()
    outputs = list(replay_lines(io.BytesIO(lines), folder.params, store))
    views = {sid: v for sid in store.shop_ids()
             if (shop := store.shop(sid)) is not None and (v := shop_view(folder.closer, store, shop)) is not None}
    return outputs, views


class Stack:
    def __init__(self, settings: Settings, worker: Worker, dashboard: DashboardServer, lines: bytes) -> None:
        self.settings, self.worker, self.dashboard, self.lines = settings, worker, dashboard, lines


@pytest.fixture(scope="module")
def stacks(kafka_bootstrap: str, state_redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A worker and a dashboard per scenario, started once for the module."""
    made: dict[str, Stack] = {}

    def get(name: str) -> Stack:
        if name not in made:
            lines = (SCENARIOS / name / "input.jsonl").read_bytes()
            s = settings_for(kafka_bootstrap, state_redis_url, f"t{os.urandom(4).hex()}-dash")
            logs = tmp_path_factory.mktemp(name)
            w = Worker(s, logs, name).start().wait_ready()
            d = DashboardServer(s, logs).start()
            made[name] = Stack(s, w, d, lines)
            fold_lines([w], s, lines)
        return made[name]

    yield get
    for st in made.values():
        st.dashboard.stop()
        st.worker.stop()
        delete_namespace(state_redis_url, st.settings.namespace)


@pytest.mark.parametrize("name", ["seed001_recruitment_quality", "substandard_after_two_improving",
                                  "seed000_example_a"])
def test_api_matches_the_state_after_a_scenario(stacks: Any, name: str) -> None:
    st = stacks(name)
    outputs, views = file_form(st.lines)
    assert views, "the scenario has shops"
    for sid, expected in views.items():
        status, got = st.dashboard.get(f"/api/shops/{urllib.parse.quote(sid, safe='')}")
        assert status == 200, got
        assert got["status"] in ("open", "computing") and got["partition"] >= 0
        assert {k: v for k, v in got.items() if k not in LIVE_ONLY} == expected, sid
        # ... and what the read model says agrees with the outputs the worker published
        assessed = [o for o in outputs if o["type"] == "tier_assessed" and o["shop_id"] == sid]
        assert got["tier"] == (assessed[-1]["tier"] if assessed else None)
        status, hist = st.dashboard.get(f"/api/shops/{urllib.parse.quote(sid, safe='')}/history")
        assert status == 200
        assert [(h["cycle"], h["tier"]) for h in hist["assessments"]] == \
            [(a["cycle"], a["tier"]) for a in reversed(assessed)]
        active: dict[str, Any] = {}
        for o in outputs:
            if o.get("shop_id") == sid and o["type"] == "recruitment_restricted":
                active[o["reason"]] = o["scope"]
            elif o.get("shop_id") == sid and o["type"] == "recruitment_restored":
                active.pop(o["reason"], None)
        assert {r["reason"]: r["scope"] for r in got["restrictions"]} == active
        reg = [o["status"] for o in outputs if o["type"] == "registration_join_changed" and o["shop_id"] == sid]
        assert got["registration_join"]["state"] == (reg[-1] if reg else "none")

    status, platform = st.dashboard.get("/api/platform")
    assert status == 200 and platform["shops"] == len(views)
    by_class: dict[str, dict[str, int]] = {}
    for v in views.values():
        tiers = by_class.setdefault(v["industry"], {})
        tiers[v["tier"] or "unassessed"] = tiers.get(v["tier"] or "unassessed", 0) + 1
    assert platform["tiers"] == {i: dict(sorted(t.items())) for i, t in sorted(by_class.items())}
    assert platform["watermark"] is not None


def test_api_errors(stacks: Any) -> None:
    d = stacks("seed001_recruitment_quality").dashboard
    status, body = d.get("/api/shops/no-such-shop")
    assert status == 404 and "unknown shop" in body["error"]
    status, body = d.get("/api/shops/" + "x" * 200)
    assert status == 400 and "malformed shop id" in body["error"]
    status, body = d.get("/api/shops/a%01b/history")
    assert status == 400
    status, body = d.get("/api/shops?limit=0")
    assert status == 400
    status, body = d.get("/api/shops?prefix=Q")
    assert status == 200 and body["shops"] == ["Q"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "the browser test needs the OS package chromium (.ci/run installs it)"
    return path


def launch_chromium(pw: Any) -> Any:
    """The OS's chromium, headless, quiet, for a playwright session (the browser tests)."""
    return pw.chromium.launch(executable_path=_chromium(), args=[
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--no-first-run", "--disable-extensions"])


def test_browser_follows_a_shop_live(stacks: Any) -> None:
    """Load the page, pick a shop, see its tier and indicators; produce an order; see the
    indicator change without reloading. The screenshots go to artifacts/."""
    from playwright.sync_api import expect, sync_playwright

    st = stacks("seed001_recruitment_quality")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(st.dashboard.url + "/")
            expect(page.locator("#platform-table tbody")).to_contain_text("rq")
            page.fill("#shop-input", "Q")
            page.press("#shop-input", "Enter")
            expect(page.locator("#shop-title")).to_contain_text("Q")
            _, api = st.dashboard.get("/api/shops/Q")
            expect(page.locator("#tier")).to_have_text(api["tier"])
            share = page.locator('[data-indicator="member_gmv_share"] .value')
            expect(share).to_have_text("0.0%")  # nothing paid yet in the cycle that opened on 2.16
            page.screenshot(path=str(ARTIFACTS / "dashboard-before.png"), full_page=True)

            last_ts = max(orjson.loads(ln)["ts"] for ln in st.lines.splitlines() if ln.strip())
            order = {"event_id": f"browser-{time.time_ns()}", "type": "order_paid", "ts": last_ts + 3_600_000,
                     "shop_id": "Q", "order_id": "browser-o1", "user_id": "n5", "amount_cents": 10_000}
            with ThreadPoolExecutor(1) as pool:  # playwright's sync API holds this thread's event loop
                pool.submit(produce_lines, st.settings, orjson.dumps(order) + b"\n").result()
            expect(share).to_have_text("100.0%", timeout=30_000)  # arrived over the feed, no reload
            assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
            page.screenshot(path=str(ARTIFACTS / "dashboard-after.png"), full_page=True)
        finally:
            browser.close()


def _local(ms: int, tz: str = "Asia/Shanghai") -> str:
    """An instant as the page shows it: local date and time with the offset (zoneinfo, not the browser)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    stamp = datetime.fromtimestamp(ms / 1000, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %z")
    return f"{stamp[:-2]}:{stamp[-2:]}"


def _overflow(page: Any) -> dict[str, Any]:
    """What sticks out: the page wider than the window, the platform table wider than its box,
    and any visible element whose right edge is past the window's."""
    return dict(page.evaluate("""() => {
      const t = document.querySelector('#platform-table'), w = window.innerWidth;
      const out = [...document.querySelectorAll('body *')].filter(e => {
        const r = e.getBoundingClientRect(); return r.width > 0 && r.right > w + 0.5; })
        .map(e => e.id || e.tagName + '.' + e.className).slice(0, 10);
      return {page: document.documentElement.scrollWidth, window: w, table: t.scrollWidth,
              box: t.parentElement.clientWidth, outside: out};
    }"""))


def test_browser_shows_local_times_and_fits_desktop_and_phone(stacks: Any) -> None:
    """Every instant in the rules' time zone with its offset, cycles by their local days, the
    registration buffer's end; at 1280 px and at a phone's width nothing overflows (screenshots
    dashboard-1280.png, dashboard-phone.png in artifacts/)."""
    from playwright.sync_api import expect, sync_playwright

    from simulator.workload import INDUSTRIES

    st = stacks("seed000_example_b")
    _, api = st.dashboard.get("/api/shops/B")
    _, platform = st.dashboard.get("/api/platform")
    assert platform["tz"] == "Asia/Shanghai" and api["registration_join"]["state"] == "buffer"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            for name, viewport in (("1280", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})):
                page = browser.new_page(viewport=viewport, device_scale_factor=1)
                page.goto(st.dashboard.url + "/#B")
                expect(page.locator("#shop-title")).to_contain_text("B")
                expect(page.locator("#platform-table tbody tr")).to_have_count(len(platform["tiers"]) + 1)
                # the cycle [2023-02-01, 2023-02-16) by its local days; the buffer ends at its boundary
                expect(page.locator("#cycle")).to_have_text("2023-02-01 – 2023-02-15")
                expect(page.locator("#registration")).to_contain_text(
                    "registration join: buffer until 2023-02-16 00:00 +08:00")
                assert _local(api["cycle"]["end"]) == "2023-02-16 00:00 +08:00"
                expect(page.locator("#platform-meta")).to_contain_text(
                    f"last closed boundary {_local(platform['last_closed'])}")
                expect(page.locator("#platform-meta")).to_contain_text(f"watermark {_local(platform['watermark'])}")
                expect(page.locator("#times-note")).to_contain_text(f"as of {_local(api['as_of'])}")
                assert "Z" not in page.locator("#platform-meta").inner_text().replace("tz", "")
                tip = page.locator("#history circle title").first.text_content()
                assert tip is not None and tip.startswith("2022-12-01 – 2022-12-15: ")
                # a grace deadline (none in this scenario's end state) goes through the same formatting
                page.evaluate("""(v) => renderShop({...v, registration_join:
                    {state: 'revoked', grace_deadline: 1676563200000, blocked: false}})""", api)
                expect(page.locator("#registration")).to_contain_text(
                    "change join setting before 2023-02-17 00:00 +08:00")
                page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)
                fit = _overflow(page)
                assert fit["page"] <= fit["window"] and fit["table"] <= fit["box"] and not fit["outside"], fit
                # and a platform of the simulator's six industries with six-digit counts fits as well
                big = {**platform, "shops": 9_999_999, "totals": dict.fromkeys(tiers := (
                    "premium", "potential", "improving", "substandard", "unassessed"), 1_999_999),
                    "tiers": {i: dict.fromkeys(tiers, 333_333) for i in INDUSTRIES}}
                page.evaluate("(p) => renderPlatform(p)", big)
                expect(page.locator("#platform-table tbody tr")).to_have_count(len(INDUSTRIES) + 1)
                page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}-large.png"), full_page=True)
                fit = _overflow(page)
                assert fit["page"] <= fit["window"] and fit["table"] <= fit["box"] and not fit["outside"], fit
                page.close()
        finally:
            browser.close()
