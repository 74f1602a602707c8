"""The JSON-body pieces adapters share (providers/_json.py)."""

from datetime import datetime, timedelta, timezone

from omnisend.providers._json import compact, merged, placed, utc_iso


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
