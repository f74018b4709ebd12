"""Calendar: boundaries on the 1st and 16th, local days, month ends."""

import pytest

from tests.builders import DAY, at
from tiering.calendar import Calendar

pytestmark = pytest.mark.unit
CAL = Calendar()


def test_boundaries_are_local_midnights_of_the_1st_and_16th() -> None:
    assert CAL.next_boundary(at(2023, 1, 1)) == at(2023, 1, 16)
    assert CAL.next_boundary(at(2023, 1, 16) - 1) == at(2023, 1, 16)
    assert CAL.cycle_start(at(2023, 1, 16)) == at(2023, 1, 16)
    assert CAL.cycle_start(at(2023, 1, 16) - 1) == at(2023, 1, 1)


@pytest.mark.parametrize(("start", "days"), [((2023, 1, 16), 16), ((2023, 2, 16), 13), ((2024, 2, 16), 14),
                                             ((2023, 4, 16), 15), ((2023, 1, 1), 15)])
def test_cycle_lengths_follow_month_ends(start: tuple[int, int, int], days: int) -> None:
    a = at(*start)
    b = CAL.next_boundary(a)
    assert (b - a) // DAY == days
    assert len(CAL.day_starts(a, b)) == days


def test_cycle_id_is_the_local_start_date() -> None:
    assert CAL.cycle_id(at(2023, 1, 16)) == "2023-01-16"
    assert CAL.cycle_id(CAL.cycle_start(at(2022, 12, 31, 23, 59))) == "2022-12-16"


def test_index_is_monotone_and_boundary_inverts_it() -> None:
    for ts in (at(2023, 1, 1), at(2023, 3, 20, 5), at(2030, 12, 31, 23)):
        i = CAL.index(ts)
        assert CAL.boundary(i) <= ts < CAL.boundary(i + 1)


def test_the_range_holds_every_contract_instant_and_ten_years_of_window_after_it() -> None:
    from tiering.contract import MAX_INSTANT, MIN_EVENT_TS
    from tiering.params import MAX_SPAN_MS
    for tz in ("Asia/Shanghai", "Pacific/Kiritimati", "Etc/GMT+12"):
        cal = Calendar(tz)
        first = cal.index(MIN_EVENT_TS - 300 * DAY)  # a first watermark 300 days of lateness back
        assert cal.boundary(first) <= MIN_EVENT_TS - 300 * DAY
        last = cal.index(MAX_INSTANT - 1 + MAX_SPAN_MS)  # an until instant of the last possible event
        assert cal.boundary(last) <= MAX_INSTANT - 1 + MAX_SPAN_MS < cal.boundary(last + 1)


def test_out_of_range_instant_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="outside the supported years"):
        CAL.index(0)
