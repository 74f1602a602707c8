"""send_many: ordering, lazy input, per-message errors, vendor-native batching, cancellation."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from omnisend import ConfigurationError, DeliveryUnknown, InvalidRecipient, Message, RetryPolicy
from omnisend._bulk import Batcher
from omnisend.testing import ClickatellEmulator, Fault, SmsapiEmulator
from tests.conftest import inprocess_async_client, inprocess_client


def numbered(count: int, *, text: str = "hello", start: int = 0) -> Iterator[Message]:
    for n in range(start, start + count):
        yield Message(to=f"+4850{n:07d}", text=text)


class Counting:
    """An iterator that records how far the consumer pulled it."""

    def __init__(self, messages: Iterator[Message]) -> None:
        self.messages = messages
        self.pulled = 0

    def __iter__(self) -> Counting:
        return self

    def __next__(self) -> Message:
        message = next(self.messages)
        self.pulled += 1
        return message


def test_outcomes_in_input_order_with_one_per_message(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    messages = [Message(to=f"+4850010{n:04d}", text=f"text {n}") for n in range(30)]
    with inprocess_client(emu, policy) as client:
        outcomes = list(client.send_many(messages, concurrency=4))
    assert [o.index for o in outcomes] == list(range(30))
    assert [o.message for o in outcomes] == messages
    assert all(o.ok and o.result is not None and o.result.recipients[0].to == o.message.to for o in outcomes)
    assert emu.accepted_count == 30


def test_completion_order_lets_fast_sends_overtake_a_slow_one(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    emu.script(Fault.slow(0.3))
    messages = [Message(to=f"+4850010{n:04d}", text=f"t{n}") for n in range(6)]
    with inprocess_client(emu, policy) as client:
        order = [o.index for o in client.send_many(messages, concurrency=3, order="completion", timeout=5.0)]
    # The slow answer goes to whichever request reached the emulator first (threads race for it).
    slow = [m.to.lstrip("+") for m in messages].index(emu.requests[0].form["to"])
    assert sorted(order) == list(range(6)) and order[0] != slow and order.index(slow) >= 2


def test_input_is_consumed_lazily() -> None:
    emu = SmsapiEmulator()
    source = Counting(Message(to=f"+4850{n:07d}", text=f"t{n}") for n in itertools.count())
    with inprocess_client(emu, RetryPolicy()) as client:
        stream = client.send_many(source, concurrency=5, batch=False)
        first = [next(stream) for _ in range(3)]
        assert [o.index for o in first] == [0, 1, 2]
        assert source.pulled <= 3 + 2 * 5  # handed over + the window
        stream.close()  # type: ignore[attr-defined]
    assert emu.accepted_count <= 3 + 2 * 5


def test_batching_reads_at_most_one_group_ahead() -> None:
    emu = SmsapiEmulator(balance=10_000)
    source = Counting(numbered(5000))
    with inprocess_client(emu, RetryPolicy()) as client:
        stream = client.send_many(source, concurrency=1)
        next(stream)
        assert source.pulled <= 3 * 1000 + 1  # the job handed over, a window of two, one message ahead
        stream.close()  # type: ignore[attr-defined]


def test_errors_are_outcomes_not_raised(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator(balance=0.35, price=0.1)
    messages = [
        Message(to="+48500100200", text="a"),
        Message(to=emu.invalid_number, text="b"),
        Message(to="+48500100201", text="c"),
        Message(to="+48500100202", text="d"),
        Message(to="+48500100203", text="e"),
    ]
    with inprocess_client(emu, policy) as client:
        outcomes = list(client.send_many(messages, concurrency=1))
    assert [o.ok for o in outcomes] == [True, False, True, True, False]
    assert isinstance(outcomes[1].error, InvalidRecipient)
    assert type(outcomes[4].error).__name__ == "InsufficientBalance"


def test_identical_content_is_batched_and_mapped_back(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator(balance=10_000)
    with inprocess_client(emu, policy) as client:
        outcomes = list(client.send_many(numbered(2500), concurrency=2))
    sends = [r for r in emu.requests if r.method == "POST"]
    assert len(sends) == 3 and [len(r.form["to"].split(",")) for r in sends] == [1000, 1000, 500]
    assert len(outcomes) == 2500 and all(o.ok for o in outcomes)
    assert all(o.result is not None and [r.to for r in o.result.recipients] == [o.message.to] for o in outcomes)
    assert len({o.result.message_id for o in outcomes if o.result}) == 2500
    assert emu.accepted_count == 2500 and emu.duplicates() == 0


def test_partial_batch_gives_the_bad_message_its_error(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    messages = [Message(to="+48500100200", text="x"), Message(to=emu.invalid_number, text="x"), Message(to="+48500100201", text="x")]
    with inprocess_client(emu, policy) as client:
        outcomes = list(client.send_many(messages))
    assert len([r for r in emu.requests if r.method == "POST"]) == 1
    assert [o.ok for o in outcomes] == [True, False, True]
    assert isinstance(outcomes[1].error, InvalidRecipient) and outcomes[1].error.code == 13


def test_messages_with_their_own_key_are_not_merged_where_one_key_covers_the_request(policy: RetryPolicy) -> None:
    emu = ClickatellEmulator()
    messages = [Message(to=f"+4850010020{n}", text="x", idempotency_key=f"order-{n}") for n in range(3)]
    with inprocess_client(emu, policy) as client:
        outcomes = list(client.send_many(messages))
    assert [o.result.idempotency_key for o in outcomes if o.result] == ["order-0", "order-1", "order-2"]
    assert len([r for r in emu.requests if r.method == "POST"]) == 3


def test_messages_with_their_own_key_are_batched_where_the_vendor_takes_an_id_per_recipient(
    policy: RetryPolicy,
) -> None:
    """SMSAPI takes one idx per recipient: keyed messages share a request, each keeping its own idx.

    A re-run is answered 53 for the whole batch; that answer cannot say which members landed, so each
    member is asked again alone (see ``members_alone``): every one answers "duplicate", none is sent twice.
    """
    emu = SmsapiEmulator()
    messages = [Message(to=f"+4850010020{n}", text="x", idempotency_key=f"order-{n}") for n in range(3)]
    with inprocess_client(emu, policy) as client:
        outcomes = list(client.send_many(messages))
        again = list(client.send_many(messages))  # a re-run: nothing sent twice
    sends = [r for r in emu.requests if r.method == "POST"]
    assert sends[0].form["idx"] == "order-0|order-1|order-2" == sends[1].form["idx"]
    assert [r.form["idx"] for r in sends[2:]] == ["order-0", "order-1", "order-2"]
    assert [o.result.idempotency_key for o in outcomes if o.result] == ["order-0", "order-1", "order-2"]
    assert all(o.ok and o.result is not None and o.result.deduplicated for o in again)
    assert emu.accepted_count == 3 and emu.duplicates() == 0


@pytest.mark.parametrize("driver", ["threads", "asyncio"])
def test_a_rerun_grouped_differently_never_loses_the_new_members(policy: RetryPolicy, driver: str) -> None:
    """A keyed batch mixing a sent id with new ones is answered "duplicate" as a whole: the new ones
    must still be sent (once), not reported as sent."""
    emu = SmsapiEmulator()
    first = Message(to="+48500100200", text="x", idempotency_key="order-0")
    later = [first, *(Message(to=f"+4850010020{n}", text="x", idempotency_key=f"order-{n}") for n in (1, 2))]
    with inprocess_client(emu, policy) as client:
        client.send(first)
    if driver == "threads":
        with inprocess_client(emu, policy) as client:
            outcomes = list(client.send_many(later))
    else:

        async def run() -> list:
            async with inprocess_async_client(emu, policy) as aclient:
                return [o async for o in aclient.send_many(later)]

        outcomes = asyncio.run(run())
    assert all(o.ok and o.result is not None for o in outcomes)
    assert [o.result.deduplicated for o in outcomes] == [True, False, False]
    assert [o.result.idempotency_key for o in outcomes] == ["order-0", "order-1", "order-2"]
    assert emu.accepted_count == 3 and emu.duplicates() == 0
    assert {r.to for r in emu.messages.values()} == {"+48500100200", "+48500100201", "+48500100202"}


def test_a_batch_never_sends_twice_under_faults(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator(balance=10_000)
    emu.script(Fault.drop_after_accept(), Fault.truncated())
    with inprocess_client(emu, policy) as client:
        outcomes = list(client.send_many(numbered(1500), concurrency=2))
    assert all(o.ok for o in outcomes)
    assert emu.accepted_count == 1500 and emu.duplicates() == 0


def test_each_send_keeps_its_own_retry_policy_and_key(policy: RetryPolicy, sleeps) -> None:
    emu = SmsapiEmulator()
    emu.script(Fault.vendor_error(203))
    messages = [Message(to=f"+4850010020{n}", text=f"t{n}") for n in range(3)]
    with inprocess_client(emu, policy) as client:
        outcomes = list(client.send_many(messages, concurrency=1))
    assert [o.result.attempts for o in outcomes if o.result] == [2, 1, 1]
    assert len({o.result.idempotency_key for o in outcomes if o.result}) == 3


@pytest.mark.parametrize(("kwargs", "match"), [(dict(concurrency=0), "concurrency"), (dict(order="random"), "order must be")])
def test_bad_options(kwargs: dict, match: str) -> None:
    with inprocess_client(SmsapiEmulator(), None) as client, pytest.raises(ConfigurationError, match=match):
        client.send_many([], **kwargs)


def test_batcher_splits_on_content_size_and_repeated_numbers() -> None:
    batcher = Batcher(max_recipients=3, batch=True)
    a = [Message(to=f"+4850010020{n}", text="a") for n in range(4)]
    jobs = [*batcher.feed(0, a[0]), *batcher.feed(1, a[1]), *batcher.feed(2, a[0]), *batcher.feed(3, a[2])]
    jobs += [*batcher.feed(4, a[3]), *batcher.feed(5, Message(to="+48500100209", text="b")), *batcher.close()]
    assert [[i for i, _ in j.members] for j in jobs] == [[0, 1], [2, 3, 4], [5]]


@pytest.mark.anyio
async def test_async_send_many_from_an_async_iterable(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator(balance=10_000)

    async def source():
        for n in range(120):
            yield Message(to=f"+4850{n:07d}", text=f"t{n % 3}")

    async with inprocess_async_client(emu, policy) as client:
        outcomes = [o async for o in client.send_many(source(), concurrency=10, batch=False)]
    assert [o.index for o in outcomes] == list(range(120)) and all(o.ok for o in outcomes)


@pytest.mark.anyio
async def test_async_completion_order_and_errors(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    emu.script(Fault.slow(0.3))
    messages = [Message(to=f"+4850010020{n}", text=f"t{n}") for n in range(5)] + [Message(to=emu.invalid_number, text="z")]
    async with inprocess_async_client(emu, policy) as client:
        outcomes = [o async for o in client.send_many(messages, concurrency=6, order="completion", timeout=5.0)]
    assert outcomes[-1].index == 0 and sorted(o.index for o in outcomes) == list(range(6))
    assert [o.ok for o in sorted(outcomes, key=lambda o: o.index)] == [True] * 5 + [False]


@pytest.mark.anyio
async def test_async_leaving_early_cancels_running_sends(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    emu.fail_randomly(1.0, [Fault.slow(0.5)])
    async with inprocess_async_client(emu, policy) as client:
        stream = client.send_many(numbered(100), concurrency=10, batch=False, timeout=5.0)
        first = await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        requests_when_closed = len(emu.requests)
        await asyncio.sleep(0.7)
    assert first.index == 0
    assert requests_when_closed <= 1 + 2 * 10 and len(emu.requests) == requests_when_closed  # no send after leaving


@pytest.mark.anyio
async def test_async_cancellation_of_the_consumer(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    emu.fail_randomly(1.0, [Fault.slow(0.5)])
    seen: list[int] = []
    async with inprocess_async_client(emu, policy) as client:

        async def consume() -> None:
            async for outcome in client.send_many(numbered(50), concurrency=5, batch=False, timeout=5.0):
                seen.append(outcome.index)

        task = asyncio.create_task(consume())

        async def in_flight(count: int) -> None:
            while len(emu.requests) < count:
                await asyncio.sleep(0.005)

        await asyncio.wait_for(in_flight(5), 10)  # every worker has its (slow) send in flight
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        sent = len(emu.requests)
        await asyncio.sleep(0.6)
    assert seen == [] and sent == 5 and len(emu.requests) == sent


def test_ambiguous_batch_failure_reaches_every_member(policy: RetryPolicy) -> None:
    """A batch whose outcome stays unknown after every retry is DeliveryUnknown for each member, each
    with the key its recipient went out with (SMSAPI: one idx per recipient)."""
    emu = SmsapiEmulator()
    emu.script(*[Fault.slow(5.0)] * 3)
    with inprocess_client(emu, policy) as client:
        outcomes = list(client.send_many(numbered(3), timeout=httpx.Timeout(10, read=0.05)))
    assert all(isinstance(o.error, DeliveryUnknown) for o in outcomes)
    sent = [r.form["idx"] for r in emu.requests if r.method == "POST"]
    assert [o.error.idempotency_key for o in outcomes if o.error] == sent[0].split("|") and len(set(sent)) == 1
    assert emu.duplicates() == 0


def breaking(count: int) -> Iterator[Message]:
    """``count`` distinct messages, then the input itself fails."""
    yield from numbered(count, text="t")
    raise RuntimeError("the message source broke")


@pytest.mark.parametrize("order", ["input", "completion"])
def test_a_failing_input_reports_every_send_made_then_raises(policy: RetryPolicy, order: str) -> None:
    emu = SmsapiEmulator()
    seen: list[int] = []
    with inprocess_client(emu, policy) as client, pytest.raises(RuntimeError, match="the message source broke"):
        for outcome in client.send_many(breaking(7), concurrency=3, order=order, batch=False):  # type: ignore[arg-type]
            seen.append(outcome.index)
    assert sorted(seen) == list(range(7)) and emu.accepted_count == 7


def test_an_item_that_is_not_a_message_is_a_type_error_after_the_ones_before_it(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    items = [Message(to="+48500100200", text="a"), Message(to="+48500100201", text="b"), "+48500100202"]
    seen: list[int] = []
    with inprocess_client(emu, policy) as client, pytest.raises(TypeError, match=r"takes omnisend\.Message items, got str at 2"):
        for outcome in client.send_many(items, batch=False):  # type: ignore[arg-type]
            seen.append(outcome.index)
    assert seen == [0, 1] and emu.accepted_count == 2


@pytest.mark.anyio
@pytest.mark.parametrize("order", ["input", "completion"])
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_async_a_failing_input_reports_every_send_made_then_raises(policy: RetryPolicy, order: str, kind: str) -> None:
    emu = SmsapiEmulator()

    async def async_breaking() -> Any:
        for message in breaking(7):
            yield message

    source = breaking(7) if kind == "sync" else async_breaking()
    seen: list[int] = []
    async with inprocess_async_client(emu, policy) as client:
        with pytest.raises(RuntimeError, match="the message source broke"):
            async for outcome in client.send_many(source, concurrency=3, order=order, batch=False):  # type: ignore[arg-type]
                seen.append(outcome.index)
    assert sorted(seen) == list(range(7)) and emu.accepted_count == 7


@pytest.mark.anyio
async def test_async_a_bug_inside_a_send_is_raised_not_swallowed(policy: RetryPolicy, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = SmsapiEmulator()
    async with inprocess_async_client(emu, policy) as client:

        def broken_send(message: Message, *_: Any) -> Any:
            raise ZeroDivisionError("a bug, not a send error")
            yield  # a driver, as the engine's are

        monkeypatch.setattr(client, "_send_driver", broken_send)
        with pytest.raises(ZeroDivisionError, match="a bug, not a send error"):
            async for _ in client.send_many(numbered(20), concurrency=4, batch=False):
                pass


@pytest.mark.anyio
async def test_async_memory_is_bounded_by_the_concurrency_with_a_slow_consumer(policy: RetryPolicy) -> None:
    """A consumer that stops reading stops the input: at most ``2 * concurrency`` sends taken ahead of it."""
    emu = SmsapiEmulator(balance=10_000)
    source = Counting(Message(to=f"+4850{n:07d}", text=f"t{n}") for n in itertools.count())
    async with inprocess_async_client(emu, policy) as client:
        stream = client.send_many(source, concurrency=8, batch=False)
        first = [await anext(stream) for _ in range(3)]
        await asyncio.sleep(0.2)  # the workers have all the time they want: they must stop at the window
        pulled, sent = source.pulled, emu.accepted_count
        await stream.aclose()  # type: ignore[attr-defined]
    assert [o.index for o in first] == [0, 1, 2]
    assert pulled <= 3 + 2 * 8 and sent <= 3 + 2 * 8 and sent == pulled


def test_pipeline_window_order_and_end() -> None:
    from omnisend._bulk import Job, Pipeline

    job = Job(Message(to="+48500100200", text="x"), ())
    pipe = Pipeline(window=2, order="input")
    assert pipe.claim() and pipe.took(job) == 0
    assert pipe.claim() and pipe.took(job) == 1
    assert not pipe.claim()  # two taken, none handed over: the window is full
    assert pipe.finish(1, []) is False and pipe.next_outcomes() is None  # job 0 comes first
    assert pipe.finish(0, []) is True and pipe.next_outcomes() == [] and pipe.next_outcomes() == []
    assert pipe.claim() and pipe.took(None) is None
    assert pipe.exhausted and pipe.finished and not pipe.claim()

    pipe = Pipeline(window=3, order="completion")
    assert pipe.claim() and pipe.took(job) == 0 and pipe.claim()
    pipe.broke(RuntimeError("input failed"))
    assert not pipe.finished  # job 0 is still out
    assert pipe.finish(0, []) is True and pipe.next_outcomes() == []
    assert pipe.finished and isinstance(pipe.failure, RuntimeError)


def test_batcher_merges_only_what_reaches_the_vendor_identically() -> None:
    """Equal in Python is not enough: option values 1, 1.0 and True reach the vendor as different text."""

    def groups(messages: list[Message]) -> list[list[int]]:
        batcher = Batcher(max_recipients=10, batch=True)
        jobs = [job for i, m in enumerate(messages) for job in batcher.feed(i, m)] + batcher.close()
        return [[i for i, _ in job.members] for job in jobs]

    base = dict(text="x", sender="Shop")
    assert groups([Message(to=f"+4850010020{n}", **base, options={"x": 1}) for n in range(3)]) == [[0, 1, 2]]
    mixed = [Message(to=f"+4850010020{n}", **base, options={"x": v}) for n, v in enumerate([1, True, 1.0])]
    assert groups(mixed) == [[0], [1], [2]]
    senders = [Message(to="+48500100200", text="x", sender="A"), Message(to="+48500100201", text="x", sender="B")]
    assert groups(senders) == [[0], [1]]
    assert groups([Message(to="+48500100200", text="x"), Message(to="+48500100200", text="x")]) == [[0], [1]]


@pytest.mark.anyio
async def test_async_no_more_workers_than_messages_in_a_sized_input(policy: RetryPolicy) -> None:
    emu = SmsapiEmulator()
    messages = [Message(to=f"+4850010020{n}", text=f"t{n}") for n in range(3)]
    async with inprocess_async_client(emu, policy) as client:
        before = len(asyncio.all_tasks())
        stream = client.send_many(messages, concurrency=10_000)
        first = await anext(stream)
        during = len(asyncio.all_tasks()) - before
        rest = [o async for o in stream]
    assert first.index == 0 and [o.index for o in rest] == [1, 2] and during <= 3
