"""The JSON-body pieces adapters share (providers/_json.py)."""

import math
from datetime import datetime, timedelta, timezone

from omnisend.providers._json import as_float, as_text, compact, file_name, merged, placed, utc_iso, value_at


def test_merged_merges_nested_objects_and_leaves_its_inputs_alone() -> None:
    base = {"content": {"smsContent": {"text": "hi"}}, "startTime": "t"}
    extra = {"content": {"smsContent": {"ttl": 60}, "pushContent": {"text": "hi"}}, "startTime": None, "comment": "c"}
    assert merged(base, extra) == {
        "content": {"smsContent": {"text": "hi", "ttl": 60}, "pushContent": {"text": "hi"}},
        "startTime": None,
        "comment": "c",
    }
    assert base == {"content": {"smsContent": {"text": "hi"}}, "startTime": "t"}
    assert merged({"a": {"b": 1}}, {"a": 2}) == {"a": 2} and merged({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}


def test_compact_drops_only_none() -> None:
    assert compact({"a": None, "b": 0, "c": "", "d": False, "e": []}) == {"b": 0, "c": "", "d": False, "e": []}


def test_placed_nests_by_path_and_leaves_out_none() -> None:
    paths = {"url": ("attachment", "url"), "name": ("attachment", "name"), "deep": ("a", "b", "c")}
    fields = {"url": "https://x/p.png", "name": "p.png", "caption": None, "text": "t", "deep": 1}
    assert placed(fields, paths) == {
        "attachment": {"url": "https://x/p.png", "name": "p.png"},
        "text": "t",
        "a": {"b": {"c": 1}},
    }
    assert placed({"url": None}, paths) == {}


def test_utc_iso_in_utc_to_the_second_or_millisecond() -> None:
    moment = datetime(2031, 1, 21, 11, 0, 0, 250999, tzinfo=timezone(timedelta(hours=3)))
    assert utc_iso(moment) == "2031-01-21T08:00:00Z"
    assert utc_iso(moment, millis=True) == "2031-01-21T08:00:00.250Z"
    assert utc_iso(None) is None


def test_as_text_is_none_only_for_absent_or_empty_values() -> None:
    assert [as_text(v) for v in (None, "", 0, 8681748, "ab", False)] == [None, None, "0", "8681748", "ab", "False"]


def test_as_float_reads_numbers_and_numeric_text_else_the_default() -> None:
    assert [as_float(v) for v in (3, "2.5", -90, "1e3")] == [3.0, 2.5, -90.0, 1000.0]
    assert all(math.isnan(as_float(v)) for v in (None, "north", True, [1], {"a": 1}))
    assert as_float("north", 0.0) == 0.0 and as_float(None, -1.0) == -1.0


def test_file_name_is_the_last_path_segment_else_the_default() -> None:
    assert file_name("https://cdn.example/a/menu.pdf?v=2#p") == "menu.pdf"
    assert file_name("https://cdn.example/") == "attachment" and file_name("https://cdn.example", "file") == "file"


def test_value_at_walks_objects_and_stops_where_the_path_breaks() -> None:
    body = {"error": {"code": 0, "detail": {"field": "to"}}, "list": [{"id": 1}], "text": "x"}
    assert value_at(body, ("error", "code")) == 0 and value_at(body, ("error", "detail", "field")) == "to"
    assert value_at(body, ()) is body
    assert value_at(body, ("list", "id")) is None  # a list on the way: no guess at an index
    assert value_at(body, ("text", "x")) is None and value_at(body, ("missing", "code")) is None
    assert value_at(None, ("a",)) is None
