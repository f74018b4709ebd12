"""The dashboard's guard: bearer token on every API and stream path, security headers, parameter checks."""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware

from tiering.contract import MAX_ID, SHOP_ID_RULE, is_shop_id

TOKEN_ENV = "TIERSTREAM_DASHBOARD_TOKEN"
MIN_TOKEN_CHARS = 16  # a shorter token is refused at start: guessable over the network
MAX_LIMIT = 1000
GUARDED_PREFIX = "/api/"  # `/`, its two static files and `/health` (a liveness probe) stay open
# The page's script and style are files of this origin: no inline script or style runs, and no
# other site may frame the page (clickjacking) or be fetched from it.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                    "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Resource-Policy": "same-origin"}
_LIMIT = re.compile(r"[0-9]{1,4}").fullmatch  # int() would also take " 5", "+5" and other scripts' digits

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenError(ValueError):
    pass


def token_from_env(environ: dict[str, str] | None = None) -> str | None:
    """The token the API requires (None: open), from TIERSTREAM_DASHBOARD_TOKEN."""
    token = (os.environ if environ is None else environ).get(TOKEN_ENV, "")
    if not token:
        return None
    if len(token) < MIN_TOKEN_CHARS or not token.isascii() or not token.isprintable() or " " in token:
        raise TokenError(f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} printable ASCII characters without "
                         f"spaces (e.g. from `openssl rand -hex 24`)")
    return token


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


def authorized(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries `token`; compared in constant time."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def guard(token: str | None) -> Middleware:
    """Middleware: a request to an API or stream path without the token is answered 401."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None and request.path.startswith(GUARDED_PREFIX) \
                and not authorized(request.headers.get("Authorization"), token):
            return error(401, "this dashboard needs its access token: send `Authorization: Bearer <token>`",
                         {"WWW-Authenticate": 'Bearer realm="tierstream"'})
        return await handler(request)

    return check


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, event streams and errors included, gets the headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith(GUARDED_PREFIX):
        response.headers.setdefault("Cache-Control", "no-store")  # shop data stays out of caches


def check_shop_id(shop_id: str) -> str | None:
    """None when `shop_id` is one the contract accepts, else why not (one line)."""
    return None if is_shop_id(shop_id) else f"malformed shop id: a shop id is {SHOP_ID_RULE}"


def shop_list_query(query: Mapping[str, str]) -> tuple[str, int] | str:
    """`prefix` and `limit` of /api/shops, or why they are refused (one line)."""
    prefix, raw_limit = query.get("prefix", ""), query.get("limit", "50")
    if not _LIMIT(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        return f"limit must be an integer between 1 and {MAX_LIMIT}"
    if prefix and (len(prefix) > MAX_ID or not is_shop_id(prefix)):
        return f"prefix must be empty or the start of a shop id ({SHOP_ID_RULE})"
    return prefix, int(raw_limit)
