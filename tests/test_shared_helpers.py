"""Small helpers the adapters share: vendor times read as UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from omnisend.providers.base import utc_from_text, utc_reader


def test_vendor_times_are_read_in_the_account_zone_and_given_in_utc() -> None:
    almaty = timezone(timedelta(hours=5))
    assert utc_from_text("2026-01-15 11:42:08", "%Y-%m-%d %H:%M:%S", zone=almaty) == datetime(
        2026, 1, 15, 6, 42, 8, tzinfo=timezone.utc
    )
    # the first format that reads the text wins; a time with its own offset keeps it
    aware = utc_from_text("2021-01-15T11:41:20+0100", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", zone=almaty)
    assert aware == datetime(2021, 1, 15, 10, 41, 20, tzinfo=timezone.utc)
    assert utc_from_text(None, "%Y-%m-%d %H:%M:%S") is None and utc_from_text("soon", "%Y-%m-%d") is None


def test_a_utc_reader_binds_the_formats_and_the_zone() -> None:
    read = utc_reader("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z")
    utc = datetime(2025, 1, 30, 11, 7, 55, tzinfo=timezone.utc)
    assert read("2025-01-30T11:07:55Z") == read("2025-01-30T11:07:55.000+0000") == utc
    assert read("2025-01-30T12:07:55+01:00") == utc and read("2025-01-30 11:07:55") is None and read(None) is None
    local = utc_reader("%Y-%m-%d %H:%M:%S", zone=timezone(timedelta(hours=5)))
    assert local("2025-01-30 16:07:55") == utc
