"""The hot-path shortcuts produce exactly what the general code would."""

from __future__ import annotations

import json
import random
import uuid
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnisend import _redact, _text
from omnisend._wire import _encode_form, _form_request
from omnisend.client import _new_key
from omnisend.providers._guard import _free_of_secrets

TEXT = st.text(st.characters(codec="utf-8"), max_size=30)


@given(st.dictionaries(TEXT, TEXT, max_size=8))
def test_form_encoding_is_byte_for_byte_urlencode(form: dict[str, str]) -> None:
    assert _encode_form(form) == urlencode(form).encode()
    assert _encode_form(form) == urlencode(form).encode()  # again, from the remembered fields


@given(st.dictionaries(TEXT, TEXT, min_size=1, max_size=6), st.sampled_from(["POST", "PUT"]))
def test_a_form_request_is_the_one_httpx_builds(form: dict[str, str], method: str) -> None:
    headers = {"User-Agent": "omnisend/test", "Accept": "application/json", "Authorization": "Bearer t0ken"}
    for base in ("http://127.0.0.1:8080", "https://api.example.com"):
        ours = _form_request(method, base + "/sms.do", dict(headers), _encode_form(form))
        again = _form_request(method, base + "/sms.do", dict(headers), _encode_form(form))  # from the cache
        theirs = httpx.Request(method, base + "/sms.do", headers=headers, data=form)
        assert ours.method == theirs.method and ours.url == theirs.url
        assert ours.headers.raw == theirs.headers.raw and ours.headers.encoding == theirs.headers.encoding
        assert ours.content == theirs.content and ours.read() == theirs.read()
        assert again.headers.raw == theirs.headers.raw and again.content == theirs.content
        again.headers["X-Changed"] = "1"  # a request's headers are its own, not the cached frame
        assert (
            _form_request(method, base + "/sms.do", dict(headers), _encode_form(form)).headers.raw == theirs.headers.raw
        )


QUERY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20)


@given(
    st.dictionaries(QUERY_TEXT, QUERY_TEXT, min_size=1, max_size=4), st.dictionaries(TEXT, TEXT, min_size=1, max_size=4)
)
def test_a_request_with_a_repeating_query_is_the_one_httpx_builds(query: dict[str, str], form: dict[str, str]) -> None:
    """The cached-URL path (Mobizon's key in the query): the URL and body httpx's general path gives."""
    from omnisend.providers import Mobizon

    provider = Mobizon(api_key="k+y/=%2F", base_url="http://127.0.0.1:8080")
    for _ in range(2):  # built, then from the cache
        ours = provider.build_http_request("POST", "/service/message/sendSmsMessage", params=query, data=form)
        theirs = httpx.Request(
            "POST",
            "http://127.0.0.1:8080/service/message/sendSmsMessage",
            params=query,
            headers={"User-Agent": ours.headers["user-agent"], "Accept": "application/json"},
            data=form,
        )
        assert ours.url == theirs.url and ours.url.raw_path == theirs.url.raw_path and str(ours.url) == str(theirs.url)
        assert dict(ours.headers) == dict(theirs.headers) and ours.content == theirs.content


def test_mobizon_calls_take_the_cached_url_path_and_send_what_they_sent_before() -> None:
    from omnisend import _wire
    from omnisend.providers import Mobizon
    from omnisend.providers.mobizon import _flatten

    key = "kz+key/with=odd%chars"
    _wire._URLS.clear()  # bounded caches shared by the whole run: a full one (many emulator ports) caches nothing
    _wire._QUERY_URLS.clear()
    provider = Mobizon(api_key=key, base_url="http://127.0.0.1:8080")
    fields = {"recipient": "77001234567", "text": "Zaproszenie: 50% taniej & więcej", "params": {"name": "k-1"}}
    ours = provider.build_call("message", "sendSmsMessage", fields)
    before = httpx.Request(  # what Mobizon.call built before the cached-URL path
        "POST",
        "http://127.0.0.1:8080/service/message/sendSmsMessage",
        params={"output": "json", "api": "v1", "apiKey": key},
        headers={
            "User-Agent": ours.headers["user-agent"],
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        content=urlencode(list(_flatten(fields))).encode(),
    )
    assert ours.url.raw_path == before.url.raw_path and ours.content == before.content
    assert dict(ours.headers) == dict(before.headers)
    assert str(ours.url) in _wire._QUERY_URLS.values() and str(ours.url) in _wire._URLS  # built and parsed once


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


def _holds(item: object, secret: str) -> bool:
    if isinstance(item, str):
        return secret in item
    if isinstance(item, dict):
        return any(_holds(k, secret) or _holds(v, secret) for k, v in item.items())
    if isinstance(item, list):
        return any(_holds(v, secret) for v in item)
    return False


@given(
    JSONISH,
    st.text(st.characters(codec="utf-8"), min_size=4, max_size=8),
    st.booleans(),
    st.sampled_from(["utf-8", "utf-16", "utf-32"]),
)
def test_a_body_said_free_of_secrets_decodes_to_nothing_that_holds_one(
    value: object, secret: str, ascii_only: bool, encoding: str
) -> None:
    for candidate in (value, [value, f"x{secret}y"], {"k": value, secret: 1}):
        content = json.dumps(candidate, ensure_ascii=ascii_only).encode(encoding)
        response = httpx.Response(200, content=content)
        if _free_of_secrets(response, (secret,)):
            assert not _holds(json.loads(content), secret)


def test_the_body_check_declines_escapes_and_wide_encodings() -> None:
    def free(content: bytes) -> bool:
        return _free_of_secrets(httpx.Response(200, content=content), ("t0ken",))

    assert free(b'{"status": "QUEUE"}')
    assert not free(b'{"echo": "t0ken"}')
    assert not free(b'{"echo": "t\\u0030ken"}')  # a JSON escape
    assert not free(b"echo=t%30ken")  # a URL escape
    assert not free('{"echo": "t0ken"}'.encode("utf-16"))
    streamed = httpx.Response(200, stream=httpx.ByteStream(b"{}"))
    assert not _free_of_secrets(streamed, ("t0ken",))  # not read yet: unknown


def test_the_quick_check_declines_what_json_cannot_show() -> None:
    assert not _redact.absent({"a": object()}, ("secret",))
    assert not _redact.absent({"a": "x"}, ('se"cret',))  # a quote is escaped in JSON
    assert not _redact.absent("a plain string", ("secret",))
    assert _redact.absent({"a": ["fine", 1, None]}, ("secret",))
    assert json.loads(json.dumps({"ok": True}))  # sanity: the check relies on the stdlib encoder


def test_the_possible_number_cache_agrees_with_libphonenumber_for_every_country_code() -> None:
    """Every country code, every E.164 length, national parts that do and do not start like a
    national prefix: the remembered answer is libphonenumber's own."""
    pn = pytest.importorskip("phonenumbers")
    rng = random.Random(20261122)
    _text._POSSIBLE.clear()
    checked = 0
    for code in sorted(pn.COUNTRY_CODE_TO_REGION_CODE):
        for length in range(max(1, 7 - len(str(code))), 16 - len(str(code))):
            for first in "0123456789":
                national = first + "".join(rng.choices("0123456789", k=length - 1))
                number = f"+{code}{national}"
                assert _text._is_possible(pn, number) is _text._parse_possible(pn, number), number
                checked += 1
    assert checked > 10_000 and len(_text._POSSIBLE) > 1000


@given(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))
def test_the_possible_number_cache_agrees_with_libphonenumber(number: str) -> None:
    pn = pytest.importorskip("phonenumbers")
    assert _text._is_possible(pn, number) is _text._parse_possible(pn, number)


def _tables() -> list[object]:
    from omnisend.providers import base, clickatell, edna, mobizon, smsapi, webex_connect

    modules = (clickatell, edna, mobizon, smsapi, webex_connect)
    return [t for m in modules for t in vars(m).values() if isinstance(t, (base.ErrorTable, base.StatusTable))]


def _spellings(table: object) -> list[object]:
    keys = [k for k in table._index]  # type: ignore[attr-defined]
    spelled: list[object] = []
    for key in keys:
        text = str(key)
        spelled += [key, text, text.upper(), text.lower(), text.title(), f" {text} ", f"{text}\n", f"0{text}"]
    return spelled + ["", " ", "unknown-value", "-1", "1e3", None, True, 3.0]


@pytest.mark.parametrize("table", _tables(), ids=lambda t: f"{type(t).__name__}-{len(t)}")  # type: ignore[arg-type]
def test_a_table_lookup_by_exact_spelling_finds_the_row_the_general_rule_finds(table: object) -> None:
    from omnisend.providers._tables import _code_key

    def general(value: object) -> object:
        key = _code_key(value)
        if key is None:
            return None
        if table._case_insensitive and isinstance(key, str):  # type: ignore[attr-defined]
            key = key.lower()
        return table._index.get(key)  # type: ignore[attr-defined]

    for value in _spellings(table):
        assert table.lookup(value) is general(value), repr(value)  # type: ignore[attr-defined]


SCENARIOS = {
    "ok": [],
    "rate limited, then ok": ["vendor_error:203"],
    "no credit": ["vendor_error:103", "vendor_error:103", "vendor_error:103"],
    "dropped after accept, de-duplicated": ["drop_after_accept"],
    "truncated answers": ["truncated", "truncated", "truncated"],
    "server errors": ["http_error:500", "http_error:502", "http_error:503"],
    "connection refused, then ok": ["refuse"],
}


def _fault(spec: str) -> object:
    from omnisend.testing import Fault

    name, _, arg = spec.partition(":")
    return getattr(Fault, name)(int(arg)) if arg else getattr(Fault, name)()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_one_request_send_ends_as_the_flow_would_end_it(scenario: str) -> None:
    """A send of one request skips the generator around its step; a message with metadata still
    goes through the flow. Both must end the same way: result, error class, code, cause, attempts."""
    from omnisend import Client, Message, OmnisendError, RetryPolicy
    from omnisend.testing import SmsapiEmulator

    def run(metadata: dict[str, str]) -> tuple[object, ...]:
        emu = SmsapiEmulator()
        emu.script(*[_fault(spec) for spec in SCENARIOS[scenario]])  # type: ignore[arg-type]
        provider = emu.make_provider("http://emulator.test")
        http = httpx.Client(transport=emu.transport())
        policy = RetryPolicy(sleep=lambda _: None)
        with Client(provider, retry=policy, http_client=http, timeout=1.0) as client:
            message = Message(to="+48500100200", text="hi", idempotency_key="order-1", metadata=metadata)
            try:
                result = client.send(message)
            except OmnisendError as exc:
                cause = type(exc.__cause__).__name__ if exc.__cause__ else None
                return ("error", type(exc).__name__, exc.code, exc.attempts, exc.idempotency_key, exc.accepted, cause)
            return (
                "sent",
                result.status,
                result.attempts,
                result.deduplicated,
                result.idempotency_key,
                emu.accepted_count,
            )

    assert run({}) == run({"order": "1"})


def test_only_a_plain_one_request_send_skips_the_flow() -> None:
    import inspect

    from omnisend import Client, Message
    from omnisend.providers import Smsapi
    from omnisend.providers.base import Step

    with Client(Smsapi(token="t0ken-for-tests")) as client:
        plain = client._work(Message(to="+48500100200", text="hi"), "k1")
        tagged = client._work(Message(to="+48500100200", text="hi", metadata={"a": "b"}), "k2")
        many = [f"+4850010{n:04d}" for n in range(1001)]
        split = client._work(Message(to=many, text="hi"), "k3")
    assert isinstance(plain, Step) and inspect.isgenerator(tagged) and inspect.isgenerator(split)


def test_tables_refuse_a_key_no_vendor_code_can_be() -> None:
    from omnisend.errors import ProviderError
    from omnisend.models import DeliveryStatus
    from omnisend.providers.base import ErrorCode, ErrorTable, StatusEntry, StatusTable

    with pytest.raises(TypeError, match="bad code True in a ErrorTable"):
        ErrorTable({True: ErrorCode(ProviderError, "x")})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="bad status None in a StatusTable"):
        StatusTable({None: StatusEntry(DeliveryStatus.SENT, "x")})  # type: ignore[dict-item]
    table = StatusTable({"Sent": StatusEntry(DeliveryStatus.SENT, "x")}, case_insensitive=True)
    assert table.lookup("SENT") is table.lookup(" sent ") is table["Sent"] and len(table) == 1
