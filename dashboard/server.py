"""`tierstream dashboard`: the HTTP API and web page over the read models (interfaces.md).

    GET /                              the dashboard page (one static file, no build, no CDN)
    GET /api/shops?prefix=P&limit=N    shop ids, for the picker
    GET /api/shops/{id}                the shop's read model + `status` (`computing` or `open`)
    GET /api/shops/{id}/history        assessments, newest first
    GET /api/shops/{id}/events         server-sent events: the read model on every change
    GET /api/platform                  shops per tier per industry, watermarks
    GET /api/platform/events           server-sent events: the platform summary when it changes
    GET /health
    GET /static/dashboard.js, /static/dashboard.css   the page's script and style

When TIERSTREAM_DASHBOARD_TOKEN is set, every /api/ path (the event streams included) needs
`Authorization: Bearer <token>`; every response carries the security headers
(dashboard/guard.py, docs/dashboard.md).

Reads only: the worker writes the read models (projections/readmodels.py) in its batch
transaction; this server reads them, their feeds, and the partition clocks, from the
namespace the live pointer names (projections.keys.resolve_namespace).
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from dashboard.guard import TokenError, add_headers, check_shop_id, guard, shop_list_query, token_from_env
from plumbing.metrics import info
from plumbing.redis_clients import async_redis
from plumbing.settings import Settings
from projections.keys import Keys, resolve_namespace
from tiering.params import RuleParams
from tiering.view import status_of

STATIC = Path(__file__).with_name("static")
PAGE = STATIC / "dashboard.html"
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
SSE_POLL_MS = 1000  # how long one XREAD blocks; status and platform changes are checked this often
SHOP_LIST_TTL_S = 5.0


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message, "status": status}, status)


class Dashboard:
    def __init__(self, settings: Settings, params: RuleParams | None = None, token: str | None = None) -> None:
        self.settings, self.token = settings, token
        self.params = params or RuleParams()
        self.r: Any = async_redis(str(settings.redis))
        self._shop_list: tuple[float, str, list[str]] | None = None
        self._stopping = False  # set at shutdown: event streams end instead of holding it up

    async def keys(self) -> Keys:
        return Keys(await resolve_namespace(self.r, self.settings.namespace), self.settings.partitions)

    async def clocks(self, k: Keys) -> list[dict[str, Any] | None]:
        pipe = self.r.pipeline(transaction=False)  # one GET each: the clocks lie in different slots
        for p in range(self.settings.partitions):
            pipe.get(k.clock(p))
        raws = await pipe.execute()
        return [orjson.loads(raw) if raw is not None else None for raw in raws]

    def event_time(self, clock: dict[str, Any] | None) -> int | None:
        """Event time a partition has reached: its watermark plus the allowed lateness."""
        if clock is None or clock.get("watermark") is None:
            return None
        return int(clock["watermark"]) + self.params.lateness_ms

    async def shop(self, shop_id: str) -> dict[str, Any] | None:
        k = await self.keys()
        raw = await self.r.get(k.view(shop_id))
        if raw is None:
            return None
        view: dict[str, Any] = orjson.loads(raw)
        return await self._with_status(k, view)

    async def _with_status(self, k: Keys, view: dict[str, Any]) -> dict[str, Any]:
        raw_clock = await self.r.get(k.clock(view["partition"]))
        clock = orjson.loads(raw_clock) if raw_clock is not None else None
        et = self.event_time(clock)
        view["status"] = status_of(view, et)
        view["event_time"] = et
        view["watermark"] = clock.get("watermark") if clock else None
        return view

    async def platform(self) -> dict[str, Any]:
        k = await self.keys()
        pipe = self.r.pipeline(transaction=False)
        for p in range(self.settings.partitions):
            pipe.hgetall(k.tiers(p))
        tiers: dict[str, dict[str, int]] = {}
        totals: dict[str, int] = {}
        for counts in await pipe.execute():
            for field, n in counts.items():
                industry, tier = field.decode().rsplit("|", 1)
                if int(n):
                    tiers.setdefault(industry, {})[tier] = tiers.get(industry, {}).get(tier, 0) + int(n)
                    totals[tier] = totals.get(tier, 0) + int(n)
        clocks = await self.clocks(k)
        marks = [c["watermark"] for c in clocks if c and c.get("watermark") is not None]
        closed = [c["last_closed"] for c in clocks if c and c.get("last_closed") is not None]
        return {"namespace": k.ns, "tz": self.params.tz,
                "tiers": {i: dict(sorted(t.items())) for i, t in sorted(tiers.items())},
                "totals": dict(sorted(totals.items())), "shops": sum(totals.values()),
                "watermark": min(marks) if marks else None, "watermark_max": max(marks) if marks else None,
                "last_closed": min(closed) if closed else None,
                "partitions": [{"partition": p, "watermark": c.get("watermark") if c else None,
                                "last_closed": c.get("last_closed") if c else None}
                               for p, c in enumerate(clocks)]}

    async def shop_ids(self, prefix: str, limit: int) -> list[str]:
        k = await self.keys()
        now = time.monotonic()
        if self._shop_list is None or self._shop_list[1] != k.ns or now - self._shop_list[0] > SHOP_LIST_TTL_S:
            pipe = self.r.pipeline(transaction=False)
            for p in range(self.settings.partitions):
                pipe.smembers(k.shops(p))
            ids = sorted({s.decode() for members in await pipe.execute() for s in members})
            self._shop_list = (now, k.ns, ids)
        return [s for s in self._shop_list[2] if s.startswith(prefix)][:limit]

    # -- HTTP -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[guard(self.token)])
        app.on_response_prepare.append(add_headers)
        app.router.add_get("/", self.page)
        app.router.add_get("/static/{name}", self.asset)
        app.router.add_get("/health", self.health)
        app.router.add_get("/api/shops", self.list_shops)
        app.router.add_get("/api/shops/{shop_id:[^/]+}", self.get_shop)
        app.router.add_get("/api/shops/{shop_id:[^/]+}/history", self.get_history)
        app.router.add_get("/api/shops/{shop_id:[^/]+}/events", self.shop_events)
        app.router.add_get("/api/platform", self.get_platform)
        app.router.add_get("/api/platform/events", self.platform_events)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._close)
        return app

    async def _shutdown(self, _app: web.Application) -> None:
        self._stopping = True

    async def _close(self, _app: web.Application) -> None:
        await self.r.aclose()

    async def page(self, request: web.Request) -> web.Response:
        # the page shows every instant in the rules' time zone; it learns which from here, before any data
        body = PAGE.read_bytes().replace(b"{{TIERSTREAM_TZ}}", html.escape(self.params.tz).encode())
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:  # only these two: nothing else of the folder is served
            return _error(404, f"no such file {name[:40]!r}")
        return web.Response(body=(STATIC / name).read_bytes(), content_type=ASSETS[name], charset="utf-8")

    async def health(self, request: web.Request) -> web.Response:
        await self.r.ping()
        return _json({"status": "ok", "namespace": (await self.keys()).ns})

    async def list_shops(self, request: web.Request) -> web.Response:
        query = shop_list_query(request.query)
        if isinstance(query, str):
            return _error(400, query)
        return _json({"shops": await self.shop_ids(*query)})

    async def _shop_or_error(self, request: web.Request) -> dict[str, Any] | web.Response:
        shop_id = request.match_info["shop_id"]
        problem = check_shop_id(shop_id)
        if problem is not None:
            return _error(400, problem)
        view = await self.shop(shop_id)
        if view is None:
            return _error(404, f"unknown shop {shop_id!r}")
        return view

    async def get_shop(self, request: web.Request) -> web.Response:
        view = await self._shop_or_error(request)
        return view if isinstance(view, web.Response) else _json(view)

    async def get_history(self, request: web.Request) -> web.Response:
        view = await self._shop_or_error(request)
        if isinstance(view, web.Response):
            return view
        return _json({"shop_id": view["shop_id"], "assessments": view["history"]})

    async def get_platform(self, request: web.Request) -> web.Response:
        return _json(await self.platform())

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        return resp

    @staticmethod
    async def _send(resp: web.StreamResponse, event: str, data: Any) -> None:
        await resp.write(b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n")

    async def shop_events(self, request: web.Request) -> web.StreamResponse:
        shop_id = request.match_info["shop_id"]
        problem = check_shop_id(shop_id)
        if problem is not None:
            return _error(400, problem)
        k = await self.keys()
        # the feed's position before the first view is read ("$" after it would lose a change
        # folded in between: the page would show the old view until the next change)
        tail = await self.r.xrevrange(k.feed(shop_id), count=1)
        last_id: Any = tail[0][0] if tail else "0-0"
        first = await self._shop_or_error(request)
        if isinstance(first, web.Response):
            return first
        resp = await self._sse(request)
        await self._send(resp, "shop", first)
        last_sent = (first["as_of"], first["status"], first["tier"], first["projected_tier"])
        try:
            while not self._stopping:
                got = await self.r.xread({k.feed(shop_id): last_id}, count=100, block=SSE_POLL_MS)
                if got:
                    _key, entries = got[-1]
                    last_id = entries[-1][0]
                    view = await self._with_status(k, orjson.loads(entries[-1][1][b"view"]))
                else:  # nothing new: the status may still move with the partition's event time
                    current = await self.shop(shop_id)
                    if current is None:
                        continue
                    view = current
                state = (view["as_of"], view["status"], view["tier"], view["projected_tier"])
                if got or state != last_sent:
                    await self._send(resp, "shop", view)
                    last_sent = state
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    async def platform_events(self, request: web.Request) -> web.StreamResponse:
        resp = await self._sse(request)
        k = await self.keys()
        summary = await self.platform()
        await self._send(resp, "platform", summary)
        last_id = "$"
        try:
            while not self._stopping:
                got = await self.r.xread({k.platform_feed(): last_id}, count=1000, block=SSE_POLL_MS)
                if got:
                    last_id = got[-1][1][-1][0]
                current = await self.platform()
                if current != summary:
                    summary = current
                    await self._send(resp, "platform", summary)
                if got:
                    await asyncio.sleep(0.5)  # at most about two platform updates a second
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp


def run_dashboard(settings: Settings, host: str = "127.0.0.1", port: int = 8080) -> int:
    """`tierstream dashboard`: serve until stopped."""
    from plumbing.metrics import setup_logging
    from plumbing.webport import port_problem

    try:
        token = token_from_env()
    except TokenError as exc:
        print(f"tierstream dashboard: {exc}", file=sys.stderr)
        return 2
    problem = port_problem(host, port, "pick another with --port")
    if problem is not None:
        print(f"tierstream dashboard: {problem}", file=sys.stderr)
        return 1
    setup_logging()
    info("dashboard starting", url=f"http://{host}:{port}/", settings=repr(settings),
         token_required=token is not None)  # whether, never what
    if token is None and host not in ("127.0.0.1", "localhost", "::1"):
        print(f"tierstream dashboard: serving {host} without a token: anyone who reaches port {port} reads "
              f"every shop (set TIERSTREAM_DASHBOARD_TOKEN)", file=sys.stderr)
    web.run_app(Dashboard(settings, token=token).app(), host=host, port=port, print=None, shutdown_timeout=2.0,
                access_log=logging.getLogger("aiohttp.access") if os.environ.get("TIERSTREAM_ACCESS_LOG") else None)
    return 0
