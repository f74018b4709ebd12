"""The dashboard guard's pure parts: the token's rules, the header check, the shop-list parameters."""

from __future__ import annotations

import pytest

from dashboard.guard import MAX_LIMIT, TOKEN_ENV, TokenError, authorized, check_shop_id, shop_list_query, token_from_env

pytestmark = pytest.mark.unit
TOKEN = "0123456789abcdef0123"


def test_the_token_comes_from_the_environment_and_is_checked() -> None:
    assert token_from_env({}) is None and token_from_env({TOKEN_ENV: ""}) is None
    assert token_from_env({TOKEN_ENV: TOKEN}) == TOKEN
    for bad in ("short", "has a space in it ok", "tab\there-0123456789", "caf\u00e9-0123456789abcdef"):
        with pytest.raises(TokenError) as exc:
            token_from_env({TOKEN_ENV: bad})
        assert bad not in str(exc.value)  # the error never repeats the secret


@pytest.mark.parametrize("header, ok", [
    (f"Bearer {TOKEN}", True), (f"bearer {TOKEN}", True), (f"Bearer  {TOKEN} ", True),
    (None, False), ("", False), (TOKEN, False), (f"Basic {TOKEN}", False), (f"Bearer {TOKEN[:-1]}", False),
    (f"Bearer {TOKEN}0", False), ("Bearer ", False), ("Bearer \u00e9", False),
])
def test_authorized(header: str | None, ok: bool) -> None:
    assert authorized(header, TOKEN) is ok


@pytest.mark.parametrize("query, expected", [
    ({}, ("", 50)), ({"limit": "1"}, ("", 1)), ({"limit": str(MAX_LIMIT), "prefix": "shop-"}, ("shop-", MAX_LIMIT)),
    ({"limit": "0"}, "limit"), ({"limit": str(MAX_LIMIT + 1)}, "limit"), ({"limit": "-1"}, "limit"),
    ({"limit": " 5"}, "limit"), ({"limit": "+5"}, "limit"), ({"limit": "\u0665"}, "limit"),
    ({"limit": "9" * 50}, "limit"),
    ({"prefix": "a:b"}, "prefix"), ({"prefix": "{"}, "prefix"), ({"prefix": "a" * 129}, "prefix"),
])
def test_shop_list_query(query: dict[str, str], expected: tuple[str, int] | str) -> None:
    got = shop_list_query(query)
    if isinstance(expected, str):
        assert isinstance(got, str) and got.startswith(expected) and "\n" not in got
    else:
        assert got == expected


def test_check_shop_id() -> None:
    assert check_shop_id("shop-00042") is None
    problem = check_shop_id("a}b")
    assert problem is not None and problem.startswith("malformed shop id")
