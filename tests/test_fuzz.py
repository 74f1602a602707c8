"""Fuzzing every parse path of every adapter with hypothesis.

Whatever a vendor (or a proxy in front of it, or a forger posting to our webhook) sends back —
arbitrary bytes, JSON of any shape, the vendor's own keys with random values, every HTTP status
from 100 to 599, odd ``Content-Type`` and ``Retry-After`` headers — an adapter answers with a
result (``SendResult``, ``DeliveryReport``, a list of ``DeliveryReport``) or raises an
``OmnisendError``. Never ``KeyError``/``TypeError``/``AttributeError``. The error survives
``pickle`` with its class, code and HTTP status, and neither its ``str``/``repr`` nor its ``raw``
holds a credential, even when the answer echoes one.

Answers come in two kinds: made up from scratch, and real — the emulator's own answer to the very
request, then mutated (another status, cut short, values swapped for the vendor's codes, other
types or noise, keys dropped). Real answers take the multi-step flows (``send_flow`` /
``status_flow``: split batches, one request per recipient, Mobizon's campaign steps and task
polling) deep into their success paths, and the webhook parsers past their signature checks;
the flows are driven by hand, each step answered with a drawn answer.

Nothing here names a vendor: each adapter's vocabulary (the keys it reads, its code and status
tables) is read from its module, so a new adapter is fuzzed as soon as it is registered.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pickle
import re
import string
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timezone
from functools import cache
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from omnisend import Client, ConfigurationError, DeliveryReport, Message, OmnisendError, SendResult, ValidationError
from omnisend._docs import available
from omnisend.providers import Provider
from omnisend.providers.base import ErrorTable, StatusTable, Step
from omnisend.testing import Emulator, get_emulator, strict_adapters

PROVIDER_CLASSES = available()
IDS = [cls.name for cls in PROVIDER_CLASSES]

#: The secret every "plain" provider is built with (from its credential environment variable).
PLAIN_SECRET = "fuzz-Secret-9f3c2e71"
BASE = "http://fuzz.test"
KEY = "fuzz-key-0001"
NUMBERS = ("+48500100200", "+48500100201", "+48500100202")

#: Examples per property (about 25 s for the whole file on 2 cores); raise it for a deeper run:
#: ``OMNISEND_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py``.
EXAMPLES = int(os.environ.get("OMNISEND_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


# -- the adapters under test ----------------------------------------------------------------------


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


#: Settings that are not secrets but that a provider needs besides its credential (Twilio's account SID).
IDENTITY_ENV: dict[str, dict[str, str]] = {"twilio": {"OMNISEND_TWILIO_ACCOUNT_SID": "AC" + "0" * 31 + "1"}}


@dataclass(frozen=True)
class Subject:
    """What the fuzzer needs about one adapter: ways to build it, its secrets, its vocabulary."""

    cls: type[Provider]
    secrets: tuple[str, ...]
    keys: tuple[str, ...]
    codes: tuple[Any, ...]

    def plain(self) -> Provider:
        """Built from the credential variable only: no webhook secrets, so webhook bodies get parsed."""
        with _env(self.cls.credential_env, PLAIN_SECRET), ExitStack() as stack:
            for name, value in IDENTITY_ENV.get(self.cls.name, {}).items():
                stack.enter_context(_env(name, value))
            return self.cls(base_url=BASE)

    def emulated(self) -> Provider:
        """Built as the emulator builds it: webhook secrets and vendor options where it sets them."""
        return get_emulator(self.cls.name)().make_provider(BASE)

    def providers(self) -> tuple[Provider, Provider]:
        return self.plain(), self.emulated()

    def message(self, recipients: int = 1) -> Message:
        demo = get_emulator(self.cls.name)().demo_message(NUMBERS[0], "fuzz")
        return demo if recipients == 1 else demo.model_copy(update={"to": numbers(recipients)})


def numbers(count: int) -> list[str]:
    return [*NUMBERS, *(f"+4850{n:07d}" for n in range(count))][:count]


def new_emulator(s: Subject) -> Emulator:
    return get_emulator(s.cls.name)(balance=1e9, rate_limit=(10**9, 60.0))


_LITERAL_KEY = re.compile(r"""(?:\.get\(\s*|\[\s*)['"]([^'"\s]{1,40})['"]""")
_TUPLE = re.compile(r"for \w+ in \(([^)]*)\)")


@cache
def subject(cls: type[Provider]) -> Subject:
    """The adapter's vocabulary, read from its module: keys it looks up, codes and statuses in its tables."""
    module = importlib.import_module(cls.__module__)
    source = inspect.getsource(module)
    keys = set(_LITERAL_KEY.findall(source))
    for group in _TUPLE.findall(source):
        keys.update(re.findall(r"""['"]([^'"\s]{1,40})['"]""", group))
    codes: set[Any] = set()
    for value in vars(module).values():
        if isinstance(value, (ErrorTable, StatusTable)):
            codes.update(value)
            codes.update(str(code) for code in value)
    secrets = {PLAIN_SECRET, *get_emulator(cls.name)().make_provider(BASE)._secrets()} - {""}
    return Subject(cls, tuple(sorted(secrets)), tuple(sorted(keys)), tuple(sorted(codes, key=repr)))


every_adapter = pytest.mark.parametrize("cls", PROVIDER_CLASSES, ids=IDS)


@pytest.fixture(autouse=True)
def _strict() -> Iterator[None]:
    """Every property runs in strict mode: an unexpected exception inside an adapter (a ``KeyError``
    the parse guard would turn into a typed error for users) fails the test instead."""
    with strict_adapters():
        yield


# -- strategies -------------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@cache
def vendor_json(s: Subject) -> st.SearchStrategy[Any]:
    """JSON built from the adapter's own keys, with its codes, statuses, our numbers and key, echoed
    credentials and noise as values."""
    numbers = [n for number in NUMBERS for n in (number, number.lstrip("+"))]
    plausible = st.sampled_from(
        [*s.codes, *numbers, KEY, "0", 0, 100, "ok", "OK", "", "2025-01-30T11:07:55Z", 1738235275]
    )
    echoed = st.sampled_from([t for x in s.secrets for t in (x, f"bad key {x}", f"/service?apiKey={x}&x=1")])
    keys = st.sampled_from(s.keys) if s.keys else st.text(max_size=10)
    return st.recursive(
        plausible | SCALARS | echoed,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=6),
        max_leaves=25,
    )


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def _cut(body: bytes, at: int) -> bytes:
    return body[: at % max(len(body), 1)]


@cache
def bodies(s: Subject) -> st.SearchStrategy[bytes]:
    shaped = vendor_json(s).map(_dumps)
    pages = [f"<html>forbidden for key {x}</html>".encode() for x in s.secrets]
    return st.one_of(
        shaped,
        ANY_JSON.map(_dumps),
        st.builds(_cut, shaped, st.integers(0, 10_000)),  # truncated JSON
        st.binary(max_size=300),
        st.sampled_from(
            [b"", b" ", b"null", b"[]", b"{}", b"<html><body><h1>502 Bad Gateway</h1></body></html>", *pages]
        ),
        shaped.map(lambda body: body.decode().encode("utf-16")),
    )


HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
HEADER_NAMES = st.sampled_from(
    ["x-request-id", "server", "date", "x-hub-signature", "x-api-key", "location"]
) | st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=15)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/html",
        "text/plain; charset=iso-8859-1",
        "",
        "application/problem+json",
    ]
)
RETRY_AFTER = st.one_of(
    st.integers(-(2**40), 2**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        ["Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "1e400", "-0", "nan", "inf", "soon"]
    ),
    HEADER_TEXT,
)
HEADERS = st.builds(
    lambda content_type, retry, retry_ms, more: [
        *([("content-type", content_type)] if content_type is not None else []),
        *([("retry-after", retry)] if retry is not None else []),
        *([("retry-after-ms", retry_ms)] if retry_ms is not None else []),
        *more,
    ],
    st.none() | CONTENT_TYPES | HEADER_TEXT,
    st.none() | RETRY_AFTER,
    st.none() | RETRY_AFTER,
    st.lists(st.tuples(HEADER_NAMES, HEADER_TEXT), max_size=3),
)
STATUSES = st.one_of(
    st.sampled_from([200, 200, 201, 202, 204, 207, 400, 401, 402, 403, 404, 409, 422, 429, 500, 502, 503, 504]),
    st.integers(100, 599),
)


@cache
def answers(s: Subject) -> st.SearchStrategy[tuple[int, bytes, list[tuple[str, str]]]]:
    """(HTTP status, body, headers) of a fuzzed answer."""
    return st.tuples(STATUSES, bodies(s), HEADERS)


_DROP = object()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _put(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    if new is _DROP and not rest:
        del copy[head]
    else:
        copy[head] = _put(copy[head], rest, new)
    return copy


def mutate(data: st.DataObject, s: Subject, body: bytes) -> bytes:
    """The JSON ``body`` with a few values swapped (codes, other types, noise) or keys dropped."""
    try:
        value = json.loads(body)
    except ValueError:
        return body
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(list(_paths(value))), label="path")
        new = data.draw(vendor_json(s) | ANY_JSON | st.just(_DROP) if path else vendor_json(s), label="value")
        value = _put(value, path, new)
    return _dumps(value)


def draw_response(
    data: st.DataObject, s: Subject, request: httpx.Request, emulator: Emulator | None = None
) -> httpx.Response:
    """A made-up answer; or, with ``emulator``, often its real answer to ``request``, as is or mutated."""
    kind = data.draw(st.sampled_from(["real", "status", "cut", "mutated", "mutated", "fuzz"]), label="kind")
    if emulator is None or kind == "fuzz":
        status, body, found = data.draw(answers(s), label="answer")
        return httpx.Response(status, headers=found, content=body, request=request)
    with httpx.Client(transport=emulator.transport()) as http:
        real = http.send(request)
    status, body, found = real.status_code, real.content, list(real.headers.multi_items())
    if kind == "status":
        status = data.draw(STATUSES, label="status")
    elif kind == "cut":
        body = body[: data.draw(st.integers(0, max(len(body) - 1, 0)), label="cut")]
    elif kind == "mutated":
        body = mutate(data, s, body)
        found = [(k, v) for k, v in found if k.lower() != "content-length"]
    return httpx.Response(status, headers=found, content=body, request=request)


# -- the property ------------------------------------------------------------------------------------


def _event(text: str) -> None:
    """Count outcomes for ``--hypothesis-show-statistics`` (only inside a property)."""
    if currently_in_test_context():
        event(text)


def check_error(secrets: tuple[str, ...], error: OmnisendError) -> None:
    """A typed error that pickles (class, code, HTTP status kept) and carries none of ``secrets``."""
    _event(f"raised {type(error).__name__}")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert back.code == error.code or (back.code != back.code and error.code != error.code)
    assert back.http_status == error.http_status and str(back) == str(error)
    shown = (str(error), repr(error), repr(error.raw), repr(error.vendor_message))
    for secret in secrets:
        for text in shown:
            assert secret not in text, f"credential in {type(error).__name__}: {text[:300]}"


def check_value(secrets: tuple[str, ...], value: object, expected: type | tuple[type, ...]) -> None:
    """A result of the expected type; its recipients' errors are checked like raised ones, its raw is clean."""
    assert isinstance(value, expected), f"{type(value).__name__} is not {expected}"
    _event(f"returned {type(value).__name__}")
    items = value if isinstance(value, list) else [value]
    assert all(isinstance(item, (SendResult, DeliveryReport)) for item in items)
    for item in items:
        for recipient in getattr(item, "recipients", ()):
            if recipient.error is not None:
                assert isinstance(recipient.error, OmnisendError)
                check_error(secrets, recipient.error)
        text = repr(item.raw)
        for secret in secrets:
            assert secret not in text, f"credential in {type(item).__name__}.raw: {text[:300]}"


def outcome(provider: Provider, call: Callable[[], object], expected: type | tuple[type, ...]) -> None:
    """Run ``call``: a value of ``expected`` or an ``OmnisendError``; anything else propagates and fails."""
    secrets = tuple(x for x in provider._secrets() if x)
    try:
        value = call()
    except OmnisendError as exc:
        check_error(secrets, exc)
        return
    check_value(secrets, value, expected)


def pick(data: st.DataObject, s: Subject) -> tuple[Provider, Emulator | None]:
    """A provider, and the emulator that answers for it (``None``: answers are made up only)."""
    emulator = new_emulator(s)
    plain = data.draw(st.booleans(), label="plain provider")
    return (s.plain(), None) if plain else (emulator.make_provider(BASE), emulator)


# -- single parse paths ----------------------------------------------------------------------------------


@every_adapter
@FUZZ
@given(data=st.data())
def test_parse_response_answers_a_result_or_a_typed_error(cls: type[Provider], data: st.DataObject) -> None:
    s = subject(cls)
    provider, emulator = pick(data, s)
    recipients = data.draw(st.sampled_from([1, 1, 2]), label="recipients")
    message = s.message(recipients if recipients <= provider.max_recipients else 1)
    try:
        request = provider.build_request(message, idempotency_key=KEY)
    except OmnisendError:  # this provider needs settings the plain one lacks (edna's cascade)
        request, emulator = httpx.Request("POST", f"{BASE}/send"), None
    response = draw_response(data, s, request, emulator)
    if data.draw(st.booleans(), label="with message"):
        outcome(provider, lambda: provider.parse_response(response, message=message, idempotency_key=KEY), SendResult)
    else:
        outcome(provider, lambda: provider.parse_response(response), SendResult)


def sent_id(s: Subject, emulator: Emulator, provider: Provider) -> str:
    """The id of a message the emulator really accepted (so status answers are real)."""
    with Client(provider, retry=None, http_client=httpx.Client(transport=emulator.transport())) as client:
        return client.send(s.message()).message_id or KEY


@every_adapter
@FUZZ
@given(data=st.data())
def test_parse_status_answers_a_report_or_a_typed_error(cls: type[Provider], data: st.DataObject) -> None:
    s = subject(cls)
    provider, emulator = pick(data, s)
    message_id = sent_id(s, emulator, provider) if emulator else data.draw(st.text(max_size=12), label="id")
    try:
        request = provider.build_status_request(message_id)
    except OmnisendError:  # no status lookups at this vendor
        request, emulator = httpx.Request("GET", f"{BASE}/status"), None
    response = draw_response(data, s, request, emulator)
    asked = data.draw(st.sampled_from([message_id, None, "other-id"]), label="asked")
    outcome(provider, lambda: provider.parse_status(response, message_id=asked), DeliveryReport)


QUERY = st.dictionaries(HEADER_TEXT, st.text(max_size=40), max_size=5)


@every_adapter
@FUZZ
@given(data=st.data())
def test_parse_webhook_answers_reports_or_a_typed_error(cls: type[Provider], data: st.DataObject) -> None:
    s = subject(cls)
    provider, emulator = pick(data, s)
    if emulator is not None and data.draw(st.booleans(), label="real callback"):
        callback = emulator.deliver(sent_id(s, emulator, provider), delivered=data.draw(st.booleans()))
        body, found, query = (
            callback.get("body", b""),
            dict(callback.get("headers") or {}),
            dict(callback.get("query") or {}),
        )
        if data.draw(st.booleans(), label="mutate"):
            raw = body.encode() if isinstance(body, str) else body
            body = mutate(data, s, raw)
            if query:
                key = data.draw(st.sampled_from(sorted(query)), label="query key")
                query[key] = data.draw(st.sampled_from([*map(str, s.codes[:50]), ""]) | st.text(max_size=20))
    else:
        body = data.draw(bodies(s) | bodies(s).map(lambda b: b.decode("utf-8", "replace")), label="body")
        found = data.draw(
            HEADERS.map(dict) | st.dictionaries(st.text(max_size=20), st.text(max_size=40)), label="headers"
        )
        keys = st.sampled_from(s.keys) if s.keys else HEADER_TEXT
        values = st.sampled_from([*map(str, s.codes[:50]), *NUMBERS, KEY, ""]) | st.text(max_size=20)
        query = data.draw(QUERY | st.dictionaries(keys, values), label="query")
    outcome(provider, lambda: provider.parse_webhook(body=body, headers=found, query=query), list)


# -- multi-step flows, driven by hand ----------------------------------------------------------------------

MAX_STEPS = 20


def answer_flow(
    flow: Any,
    answer: Callable[[Step[Any]], httpx.Response],
    secrets: tuple[str, ...],
    expected: type | tuple[type, ...],
) -> bool:
    """Answer each step of ``flow`` with ``answer(step)``, as the client would (a step's error is
    thrown in), checking what comes out; True when the flow ended within ``MAX_STEPS``."""
    try:
        step = next(flow)
        for _ in range(MAX_STEPS):
            assert isinstance(step, Step) and isinstance(step.request, httpx.Request)
            try:
                value = step.parse(answer(step))
            except OmnisendError as exc:
                check_error(secrets, exc)
                step = flow.throw(exc)
            else:
                step = flow.send(value)
    except StopIteration as stop:
        check_value(secrets, stop.value, expected)
        return True
    except OmnisendError as exc:
        check_error(secrets, exc)
        return True
    flow.close()
    return False


def drive(
    s: Subject,
    provider: Provider,
    emulator: Emulator | None,
    data: st.DataObject,
    flow: Any,
    expected: type | tuple[type, ...],
) -> None:
    """Answer each step of ``flow`` with a drawn answer."""
    secrets = tuple(x for x in provider._secrets() if x)
    answer_flow(flow, lambda step: draw_response(data, s, step.request, emulator), secrets, expected)


@every_adapter
@FUZZ
@given(data=st.data())
def test_send_flow_steps_end_in_a_result_or_a_typed_error(cls: type[Provider], data: st.DataObject) -> None:
    s = subject(cls)
    provider, emulator = pick(data, s)
    split = provider.max_recipients + 1  # one more than a request takes: the flow splits
    recipients = data.draw(st.sampled_from([1, 2, 3] + ([split] if split <= 1001 else [])), label="recipients")
    drive(s, provider, emulator, data, provider.send_flow(s.message(recipients), idempotency_key=KEY), SendResult)


@every_adapter
@FUZZ
@given(data=st.data())
def test_status_flow_steps_end_in_a_report_or_a_typed_error(cls: type[Provider], data: st.DataObject) -> None:
    s = subject(cls)
    provider, emulator = pick(data, s)
    message_id = sent_id(s, emulator, provider) if emulator else data.draw(st.sampled_from(["1", KEY]), label="id")
    drive(s, provider, emulator, data, provider.status_flow(message_id), DeliveryReport)


# -- examples the fuzzer found, pinned --------------------------------------------------------------------
# Each of these leaked a credential the answer echoed (an error page quoting the key, a code object,
# a success body, a private flow step) into an error's str/repr/raw or a result's raw, before the
# parse guard in providers/base.py masked them.


def _echo(provider: Provider) -> str:
    secret = next(x for x in provider._secrets() if x)
    return f"/service?apiKey={secret}&x=1"


@every_adapter
@pytest.mark.parametrize("status", [200, 201, 299, 500])
def test_pinned_an_error_page_echoing_the_key(cls: type[Provider], status: int) -> None:
    provider = subject(cls).emulated()
    page = f"<html>forbidden for {_echo(provider)}</html>".encode()
    answer = httpx.Response(status, content=page, request=httpx.Request("POST", BASE))
    outcome(provider, lambda: provider.parse_response(answer), SendResult)
    outcome(provider, lambda: provider.parse_status(answer, message_id="1"), DeliveryReport)


@every_adapter
@pytest.mark.parametrize("status", [200, 303, 400, 500])
def test_pinned_every_key_the_adapter_reads_echoing_the_key(cls: type[Provider], status: int) -> None:
    s = subject(cls)
    provider = s.emulated()
    inner = dict.fromkeys(s.keys, _echo(provider))
    for body in ({key: inner for key in s.keys}, {key: [inner] for key in s.keys}, inner):
        answer = httpx.Response(status, json=body, request=httpx.Request("POST", BASE))
        outcome(
            provider, lambda a=answer: provider.parse_response(a, message=s.message(), idempotency_key=KEY), SendResult
        )
        outcome(provider, lambda a=answer: provider.parse_status(a, message_id=KEY), DeliveryReport)


@every_adapter
def test_pinned_a_success_answer_echoing_the_key(cls: type[Provider]) -> None:
    s = subject(cls)
    emulator = new_emulator(s)
    provider = emulator.make_provider(BASE)
    message = s.message()
    request = provider.build_request(message, idempotency_key=KEY)
    with httpx.Client(transport=emulator.transport()) as http:
        real = http.send(request).json()
    echoed = {**real, "echo": _echo(provider)} if isinstance(real, dict) else [real, _echo(provider)]
    answer = httpx.Response(200, json=echoed, request=request)
    outcome(provider, lambda: provider.parse_response(answer, message=message, idempotency_key=KEY), SendResult)


@every_adapter
@pytest.mark.parametrize("recipients", [1, 2])
def test_pinned_every_flow_step_answer_echoing_the_key(cls: type[Provider], recipients: int) -> None:
    s = subject(cls)
    provider = s.emulated()
    flow = provider.send_flow(s.message(recipients), idempotency_key=KEY)
    secrets = tuple(x for x in provider._secrets() if x)
    step = next(flow)
    body = {"field": [_echo(provider), True], "validity": 1.5}
    answer = httpx.Response(263, json=body, request=step.request)
    try:
        value = step.parse(answer)
    except OmnisendError as exc:
        check_error(secrets, exc)
    else:
        if isinstance(value, (SendResult, DeliveryReport)):
            check_value(secrets, value, (SendResult, DeliveryReport))


def _poisoned(value: Any, secret: str, *, first_items: bool) -> Any:
    """``value`` with ``secret`` added to every object (``echo``) or, with ``first_items``, as every
    scalar of the first object in each list."""
    if isinstance(value, dict):
        poisoned = {k: _poisoned(v, secret, first_items=first_items) for k, v in value.items()}
        return poisoned if first_items else {**poisoned, "echo": secret}
    if isinstance(value, list):
        items = [_poisoned(v, secret, first_items=first_items) for v in value]
        if first_items and items and isinstance(items[0], dict):
            items[0] = {k: v if isinstance(v, (dict, list)) else secret for k, v in items[0].items()}
        return items
    return value


@every_adapter
@pytest.mark.parametrize("first_items", [False, True], ids=["echo-key", "first-item"])
def test_pinned_a_flow_assembling_its_result_from_echoing_steps(cls: type[Provider], first_items: bool) -> None:
    """Found by the deep run: Mobizon's campaign flow built its SendResult (raw, and a recipient's
    error code) from an addRecipients answer echoing the key; flows are now guarded like parse methods."""
    s = subject(cls)
    emulator = new_emulator(s)
    provider = emulator.make_provider(BASE)
    secrets = tuple(x for x in provider._secrets() if x)
    flow = provider.send_flow(s.message(2), idempotency_key=KEY)
    with httpx.Client(transport=emulator.transport()) as http:

        def echoing(step: Step[Any]) -> httpx.Response:
            real = http.send(step.request)
            body = _poisoned(real.json(), _echo(provider), first_items=first_items)
            return httpx.Response(real.status_code, json=body, request=step.request)

        assert answer_flow(flow, echoing, secrets, SendResult), "the flow did not end"


# -- bad input: text, sender, options, keys, credentials -----------------------------------------------
# Whatever a caller hands omnisend, the outcome is a request that can go out, or a typed error before
# any request: ``ValidationError`` from ``Message`` or the adapter, ``ConfigurationError`` from a
# provider's constructor. Never ``UnicodeEncodeError``, ``TypeError`` or a JSON encoder's ``ValueError``.

ANY_CHAR = st.characters(exclude_categories=())  # surrogates and control characters included
NASTY_TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=24),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "\n", " ", "k--1", "a|b", "a,b", "\u00e9\u200b", "\t"]),
    st.text(st.sampled_from("ab-\x00\ud83d\n"), min_size=1, max_size=6),
)
OPTION_VALUES = st.recursive(
    st.one_of(
        SCALARS,
        NASTY_TEXT,
        st.binary(max_size=4),
        st.sets(st.integers(0, 3), max_size=2),
        st.datetimes(timezones=st.none() | st.just(timezone.utc)),
        st.dates(),
        st.decimals(allow_nan=True),
        st.just(object()),
        st.times(),
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(NASTY_TEXT | st.integers(0, 3), inner, max_size=3)
        | st.tuples(inner)
    ),
    max_leaves=8,
)


@cache
def option_names(s: Subject) -> st.SearchStrategy[str]:
    owned = sorted(s.cls.owned_options)
    spelled = [*owned, *(o.upper() for o in owned), *(re.sub(r"\.(\w+)", r"[\1]", o) for o in owned)]
    return st.sampled_from(spelled or ["x"]) | NASTY_TEXT | st.sampled_from(["note", "validity", "params"])


def _message_fields(data: st.DataObject, s: Subject) -> dict[str, Any]:
    demo = get_emulator(s.cls.name)().demo_message(NUMBERS[0], "fuzz").model_dump(exclude_defaults=True)
    fields: dict[str, Any] = {**demo, "to": list(NUMBERS[: data.draw(st.integers(1, 3), label="recipients")])}
    if data.draw(st.booleans(), label="nasty text"):
        fields["text"] = data.draw(NASTY_TEXT, label="text")
    if data.draw(st.booleans(), label="nasty sender"):
        fields["sender"] = data.draw(NASTY_TEXT, label="sender")
    if data.draw(st.booleans(), label="nasty key"):
        fields["idempotency_key"] = data.draw(NASTY_TEXT, label="key")
    options = data.draw(st.dictionaries(option_names(s), OPTION_VALUES, max_size=3), label="options")
    if options:
        fields["options"] = {**fields.get("options", {}), **options}
    return fields


def check_request(request: httpx.Request) -> None:
    """A request that can really go out: its headers and body are bytes, its URL is ASCII."""
    assert isinstance(request.content, bytes)
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in request.headers.raw)
    str(request.url).encode("ascii")


@every_adapter
@FUZZ
@given(data=st.data())
def test_bad_input_is_a_typed_error_before_any_request(cls: type[Provider], data: st.DataObject) -> None:
    s = subject(cls)
    provider, _ = pick(data, s)
    try:
        message = Message(**_message_fields(data, s))
    except ValidationError as exc:
        check_error(s.secrets, exc)
        return
    key = message.idempotency_key or data.draw(st.sampled_from([KEY]) | NASTY_TEXT, label="flow key")
    try:
        flow = provider.send_flow(message, idempotency_key=key)
        step = next(flow)
    except StopIteration:
        return
    except (ValidationError, ConfigurationError) as exc:  # refused before any request
        check_error(s.secrets, exc)
        _event(f"refused {type(exc).__name__}")
        return
    assert isinstance(step, Step)
    check_request(step.request)
    _event("sent")


def _credential_argument(cls: type[Provider]) -> str:
    return next(name for name in inspect.signature(cls.__init__).parameters if name != "self")


def _refusal_words(cls: type[Provider]) -> str:
    """What a refusal holds whatever the credential (a plainly wrong one's refusal, the fixed fields
    of the repr): a credential found there is not a leak (Hypothesis draws the source's constants)."""
    try:
        cls(**{_credential_argument(cls): "Cr3dQQQQQQQQ", "base_url": BASE})
    except ConfigurationError as exc:
        return f"{exc} {exc!r}"
    return repr(ConfigurationError("", provider=cls.name))


@every_adapter
@FUZZ
@given(data=st.data())
def test_bad_credentials_are_a_configuration_error_when_the_provider_is_built(
    cls: type[Provider], data: st.DataObject
) -> None:
    s = subject(cls)
    distinct = st.text(string.printable, max_size=30).map(lambda text: f"Cr3d{text}")  # never an ordinary word
    credential = data.draw(NASTY_TEXT.map(lambda text: f"Cr3d{text}") | NASTY_TEXT | distinct, label="credential")
    try:
        provider = cls(**{_credential_argument(cls): credential, "base_url": BASE})
    except ConfigurationError as exc:
        shown = credential.strip()
        if len(shown) >= 4 and shown not in _refusal_words(cls):  # shorter values are not masked (ordinary words)
            assert shown not in str(exc) and shown not in repr(exc)
        _event("refused")
        return
    assume(credential.strip().startswith("Cr3d"))
    emulator = new_emulator(s)
    with Client(provider, retry=None, http_client=httpx.Client(transport=emulator.transport())) as client:
        try:
            check_request(provider.build_request(s.message(), idempotency_key=KEY))
        except OmnisendError as exc:  # edna without a cascade: a typed refusal, before any request
            check_error(provider._secrets(), exc)
        outcome(provider, lambda: client.send(s.message()), SendResult)
