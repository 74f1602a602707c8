"""The hot-path shortcuts produce exactly what the general code would."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlencode

import httpx
from hypothesis import given
from hypothesis import strategies as st

from omnisend import _redact
from omnisend.client import _new_key
from omnisend.providers.base import _encode_form, _form_request, _url

TEXT = st.text(st.characters(codec="utf-8"), max_size=30)


@given(st.dictionaries(TEXT, TEXT, max_size=8))
def test_form_encoding_is_byte_for_byte_urlencode(form: dict[str, str]) -> None:
    assert _encode_form(form) == urlencode(form).encode()


@given(st.dictionaries(TEXT, TEXT, min_size=1, max_size=6), st.sampled_from(["POST", "PUT"]))
def test_a_form_request_is_the_one_httpx_builds(form: dict[str, str], method: str) -> None:
    headers = {"User-Agent": "omnisend/test", "Accept": "application/json", "Authorization": "Bearer t0ken"}
    for base in ("http://127.0.0.1:8080", "https://api.example.com"):
        ours = _form_request(method, _url(base + "/sms.do"), dict(headers), _encode_form(form))
        theirs = httpx.Request(method, base + "/sms.do", headers=headers, data=form)
        assert ours.method == theirs.method and ours.url == theirs.url
        assert ours.headers.raw == theirs.headers.raw
        assert ours.content == theirs.content and ours.read() == theirs.read()


def test_generated_keys_are_uuid4_hex() -> None:
    keys = {_new_key() for _ in range(2000)}
    assert len(keys) == 2000
    for key in keys:
        parsed = uuid.UUID(key)
        assert parsed.hex == key and parsed.version == 4 and parsed.variant == uuid.RFC_4122


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)


@given(JSONISH, st.text(st.characters(codec="utf-8"), min_size=4, max_size=8))
def test_the_quick_secret_check_never_misses_a_secret(value: object, secret: str) -> None:
    def holds(item: object) -> bool:
        if isinstance(item, str):
            return secret in item
        if isinstance(item, dict):
            return any(holds(k) or holds(v) for k, v in item.items())
        if isinstance(item, list):
            return any(holds(v) for v in item)
        return False

    for candidate in (value, [value, f"x{secret}y"], {"k": value, secret: 1}):
        if holds(candidate):
            assert not _redact.absent(candidate, (secret,))
            assert not holds(_redact.scrub(candidate, (secret,)))
        elif _redact.absent(candidate, (secret,)):
            assert _redact.scrub(candidate, (secret,)) is candidate


def test_the_quick_check_declines_what_json_cannot_show() -> None:
    assert not _redact.absent({"a": object()}, ("secret",))
    assert not _redact.absent({"a": "x"}, ('se"cret',))  # a quote is escaped in JSON
    assert not _redact.absent("a plain string", ("secret",))
    assert _redact.absent({"a": ["fine", 1, None]}, ("secret",))
    assert json.loads(json.dumps({"ok": True}))  # sanity: the check relies on the stdlib encoder
