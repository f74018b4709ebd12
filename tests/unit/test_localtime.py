"""The rules' time zone loads where the OS has no zone database (the `tzdata` package backs zoneinfo)."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

import pytest

from tiering.params import RuleParams

pytestmark = pytest.mark.unit


def test_the_rules_time_zone_loads_without_the_os_zone_database() -> None:
    saved = zoneinfo.TZPATH
    zoneinfo.reset_tzpath(to=[])  # as on a slim image or Windows: no /usr/share/zoneinfo
    try:
        tz = zoneinfo.ZoneInfo.no_cache(RuleParams().tz)
        assert datetime(2023, 2, 16, tzinfo=tz).utcoffset() == timedelta(hours=8)
        assert datetime(1988, 7, 1, tzinfo=tz).utcoffset() == timedelta(hours=9)  # China's summer time, 1986-91
    finally:
        zoneinfo.reset_tzpath(to=saved)
