"""Pure helpers behind ``send_many``: outcomes, vendor-native batching, splitting results back.

Batching merges *consecutive* messages with identical content (text, sender, channel, template,
media, schedule, validity, options) into one multi-recipient send, up to the provider's
``max_recipients``. A merged send is retried, or not, exactly like a single send, so batching
never weakens the no-double-send rule. Grouping looks at one group at a time, so memory stays
bounded.

Keys. Where the vendor takes an id per recipient in one request (SMSAPI ``idx``,
``Provider.keyed_recipients``), every member keeps its own key — the caller's, or one generated
for it — and its recipients keep the ids they would have if it were sent alone
(``<key>`` for one recipient, ``<key>--<n>`` for several). Messages with their own keys are
batched too, so a campaign with deterministic keys is sent at the same request count as one
without, each member de-duplicated by the vendor. Each member's outcome (result and errors)
carries that key: re-sending the member with it is safe. A batch the vendor answers "already
sent" as a whole is asked again member by member (:func:`members_alone`): a re-run grouped
differently from the first run mixes sent and new ids, and no new member may be reported as sent. Elsewhere a caller's key belongs to one message, so such
messages are sent alone, and merged messages share one key.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Generator, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, Literal

from ._inputs import new_key, recipient_ids
from .errors import OmnisendError
from .models import Message, RecipientResult, SendResult

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "READ",
    "AsyncJobs",
    "Batcher",
    "Job",
    "Order",
    "Pipeline",
    "SendOutcome",
    "ajobs",
    "job_plan",
    "jobs",
    "members_alone",
    "schedule",
    "split_outcomes",
]

Order = Literal["input", "completion"]


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What ``send_many`` yields for one input message: its result or its typed error."""

    index: int
    """Position of the message in the input."""
    message: Message
    result: SendResult | None = None
    error: OmnisendError | None = None

    @property
    def ok(self) -> bool:
        """True when the message was sent (some recipients may still have failed: see ``result.failed``)."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class Job:
    """One send to make: a message (possibly merged from several inputs) and where its inputs were."""

    message: Message
    members: tuple[tuple[int, Message], ...]
    keys: tuple[str, ...] | None = None
    """Each member's own key, in a batch where each member keeps one (``Provider.keyed_recipients``)."""


def _same_content(a: Message, b: Message) -> bool:
    """Whether ``a`` and ``b`` say the same thing the same way (everything but recipients and metadata)."""
    return (
        a.text == b.text
        and a.sender == b.sender
        and a.channel == b.channel
        and a.template == b.template
        and a.media == b.media
        and a.scheduled_at == b.scheduled_at
        and a.validity == b.validity
        and a.options == b.options
        and (not a.options or [repr(v) for v in a.options.values()] == [repr(v) for v in b.options.values()])
    )  # options by repr too: 1, 1.0 and True are equal, but reach the vendor as different text


class Batcher:
    """Groups input messages into jobs, one message at a time (shared by sync and async ``send_many``)."""

    def __init__(self, *, max_recipients: int, batch: bool, keyed: bool = False) -> None:
        self.max_recipients = max_recipients
        self.batch = batch and max_recipients > 1
        self.keyed = keyed
        self._group: list[tuple[int, Message]] = []
        self._count = 0
        self._numbers: set[str] | None = None  # the group's numbers, once a second message may join

    def feed(self, index: int, message: Message) -> list[Job]:
        """Add one input message; returns the jobs that are complete because of it."""
        if not isinstance(message, Message):
            raise TypeError(f"send_many takes omnisend.Message items, got {type(message).__name__} at {index}")
        if not self.batch or (message.idempotency_key is not None and not self.keyed):
            return [*self.close(), Job(message, ((index, message),))]
        recipients = message.recipients
        done = []
        if self._group:
            if _same_content(self._group[0][1], message) and self._fits(recipients):
                assert self._numbers is not None
                self._numbers.update(recipients)
            else:
                done = self.close()
        self._group.append((index, message))
        self._count += len(recipients)
        return done

    def _fits(self, recipients: tuple[str, ...]) -> bool:
        if self._count + len(recipients) > self.max_recipients:
            return False
        if self._numbers is None:
            self._numbers = {number for _, m in self._group for number in m.recipients}
        return self._numbers.isdisjoint(recipients)

    def close(self) -> list[Job]:
        """The pending group as a job (if any)."""
        group, self._group, self._count, self._numbers = self._group, [], 0, None
        if not group:
            return []
        if len(group) == 1:
            return [Job(group[0][1], (group[0],))]
        to = [number for _, m in group for number in m.recipients]
        first = group[0][1]
        if not self.keyed:
            return [Job(first.model_copy(update={"to": to, "metadata": {}}), tuple(group))]
        keys = tuple(m.idempotency_key or new_key() for _, m in group)
        ids = tuple(i for key, (_, m) in zip(keys, group, strict=True) for i in recipient_ids(key, len(m.recipients)))
        return [Job(first._part(to, ids, metadata={}, idempotency_key=None), tuple(group), keys)]


def jobs(
    messages: Iterable[Message], *, max_recipients: int, batch: bool, keyed: bool = False
) -> Generator[Job, None, None]:
    """Turn input messages into jobs lazily, merging consecutive identical content when ``batch``."""
    batcher = Batcher(max_recipients=max_recipients, batch=batch, keyed=keyed)
    for index, message in enumerate(messages):
        yield from batcher.feed(index, message)
    yield from batcher.close()


async def ajobs(
    messages: Iterable[Message] | AsyncIterable[Message], *, max_recipients: int, batch: bool, keyed: bool = False
) -> AsyncGenerator[Job, None]:
    """:func:`jobs` for a sync or async iterable."""
    if not isinstance(messages, AsyncIterable):
        for job in jobs(messages, max_recipients=max_recipients, batch=batch, keyed=keyed):
            yield job
        return
    batcher = Batcher(max_recipients=max_recipients, batch=batch, keyed=keyed)
    index = 0
    async for message in messages:
        for job in batcher.feed(index, message):
            yield job
        index += 1
    for job in batcher.close():
        yield job


class AsyncJobs:
    """The jobs of a sync or async iterable, for asyncio workers taking them one by one.

    A plain iterable is read directly (no async-generator hop per message); an async one is
    advanced by one worker at a time.
    """

    def __init__(
        self, messages: Iterable[Message] | AsyncIterable[Message], *, max_recipients: int, batch: bool, keyed: bool
    ) -> None:
        self._sync: Generator[Job, None, None] | None = None
        self._async: AsyncGenerator[Job, None] | None = None
        if isinstance(messages, AsyncIterable):
            self._async = ajobs(messages, max_recipients=max_recipients, batch=batch, keyed=keyed)
        else:
            self._sync = jobs(messages, max_recipients=max_recipients, batch=batch, keyed=keyed)
        self._reading: asyncio.Lock | None = None

    async def next(self) -> Job | None:
        """The next job, or ``None`` when the input is used up; raises what reading the input raised."""
        if self._sync is not None:
            return next(self._sync, None)
        assert self._async is not None
        if self._reading is None:
            import asyncio

            self._reading = asyncio.Lock()
        async with self._reading:
            return await anext(self._async, None)

    async def aclose(self) -> None:
        if self._sync is not None:
            self._sync.close()
        if self._async is not None:
            await self._async.aclose()


def split_outcomes(job: Job, result: SendResult | None, error: OmnisendError | None) -> list[SendOutcome]:
    """One outcome per input message of ``job``, each with its own recipients' results (and its own
    key, where the batch kept one per member)."""
    if len(job.members) == 1:
        index, message = job.members[0]
        return [SendOutcome(index, message, result, error)]
    keys: tuple[str | None, ...] = job.keys or (None,) * len(job.members)
    members = zip(job.members, keys, strict=True)
    if error is not None or result is None:
        return [SendOutcome(index, message, None, _keyed(error, key)) for (index, message), key in members]
    by_number = {r.to: r for r in result.recipients}
    return [_member_outcome(index, message, key, result, by_number) for (index, message), key in members]


def _member_outcome(
    index: int, message: Message, key: str | None, result: SendResult, by_number: dict[str, RecipientResult]
) -> SendOutcome:
    """One member's share of a batch result: its own recipients, led by the first one accepted; the
    first one's error when none was."""
    mine = tuple(_keyed_recipient(by_number[n], key) for n in message.recipients if n in by_number)
    accepted = [r for r in mine if r.error is None]
    if not accepted and mine and mine[0].error is not None:
        return SendOutcome(index, message, None, mine[0].error)
    first = accepted[0] if accepted else None
    part = replace(
        result,
        message_id=first.message_id if first else None,
        status=first.status if first else result.status,
        recipients=mine,
        metadata=dict(message.metadata),
        idempotency_key=key or result.idempotency_key,
    )
    return SendOutcome(index, message, part, None)


def members_alone(job: Job, result: SendResult | None) -> list[tuple[int, Message, Message]] | None:
    """For a keyed batch answered "already sent" as a whole: each member to send again alone.

    Such an answer (SMSAPI 53 for the request) cannot say which members landed earlier: a re-run
    that groups keyed messages differently mixes ids that were sent with ids that were not, and
    reporting every member as sent would silently lose the new ones. Nothing of the refused request
    was taken, and the vendor de-duplicates each member's own ids, so each member goes out again
    alone with its key: one that landed earlier is answered "duplicate" (success, ``deduplicated``),
    a new one is sent now. Returns ``(index, input message, message to send)`` per member, or
    ``None`` when the batch result stands.
    """
    if result is None or not result.deduplicated or job.keys is None or len(job.members) < 2:
        return None
    return [
        (index, message, message.model_copy(update={"idempotency_key": key}))
        for (index, message), key in zip(job.members, job.keys, strict=True)
    ]


#: What a job's plan hands back for each message it asked to send: the result, or the typed error.
Answer = SendResult | OmnisendError


def job_plan(job: Job) -> Generator[Message, Answer, list[SendOutcome]]:
    """The sends of one job, sans I/O: yields each message to send, receives its answer, returns the
    job's outcomes (one per input message). Both ``send_many`` drivers run it; only the send differs.
    """
    answer = yield job.message
    if isinstance(answer, OmnisendError):
        return split_outcomes(job, None, answer)
    alone = members_alone(job, answer)
    if alone is None:
        return split_outcomes(job, answer, None)
    outcomes = []
    for index, message, keyed in alone:
        answer = yield keyed
        if isinstance(answer, OmnisendError):
            outcomes.append(SendOutcome(index, message, None, answer))
        else:
            outcomes.append(SendOutcome(index, message, answer, None))
    return outcomes


def _keyed(error: OmnisendError | None, key: str | None) -> OmnisendError | None:
    """``error`` as one member's error: a copy carrying the member's own key (the batch's error is shared)."""
    if error is None or key is None or error.idempotency_key == key:
        return error
    return error.evolve(idempotency_key=key)


def _keyed_recipient(recipient: RecipientResult, key: str | None) -> RecipientResult:
    if recipient.error is None or key is None:
        return recipient
    return replace(recipient, error=_keyed(recipient.error, key))


class Pipeline:
    """The bookkeeping of one ``send_many`` run, shared by the thread and the asyncio drivers (no I/O).

    Jobs are numbered as they are taken from the input. A job's outcomes wait here until the
    consumer takes them: in input order (job by job) or in completion order. At most ``window``
    jobs are taken and not yet handed to the consumer, so memory is bounded by the window
    whatever the input's length, and a slow consumer stops the reading of the input.

    When reading the input fails (the iterator raises, or an item is not a ``Message``), no
    further job is taken; the outcomes of every job already taken are handed over first, then
    the error is raised to the consumer: no send that went out goes unreported.
    """

    def __init__(self, *, window: int, order: Order) -> None:
        self.window = window
        self.order = order
        self.exhausted = False
        """The input is used up (or failed): no further job will be taken."""
        self.failure: BaseException | None = None
        """Why reading the input failed, raised to the consumer after the last outcome."""
        self._claimed = 0
        self._taken = 0
        self._handed = 0
        self._ready: dict[int, list[SendOutcome]] = {}
        self._done: deque[list[SendOutcome]] = deque()

    def claim(self) -> bool:
        """Reserve room to read one more job; False when the input is used up or the window full."""
        if self.exhausted or self._taken + self._claimed - self._handed >= self.window:
            return False
        self._claimed += 1
        return True

    def took(self, job: Job | None) -> int | None:
        """A claimed read gave ``job`` (its number is returned), or ``None``: the input is used up."""
        self._claimed -= 1
        if job is None:
            self.exhausted = True
            return None
        self._taken += 1
        return self._taken - 1

    def broke(self, error: BaseException) -> None:
        """A claimed read raised ``error``: take nothing more, raise it after the last outcome."""
        self._claimed -= 1
        self.exhausted = True
        if self.failure is None:
            self.failure = error

    def finish(self, number: int, outcomes: list[SendOutcome]) -> bool:
        """Job ``number`` is done; True when the consumer can now take something it could not."""
        if self.order == "input":
            self._ready[number] = outcomes
            return number == self._handed
        self._done.append(outcomes)
        return True

    def next_outcomes(self) -> list[SendOutcome] | None:
        """The outcomes the consumer takes next, or ``None`` when they are not there yet."""
        if self.order == "input":
            outcomes = self._ready.pop(self._handed, None)
        else:
            outcomes = self._done.popleft() if self._done else None
        if outcomes is not None:
            self._handed += 1
        return outcomes

    def unyielded(self) -> list[SendOutcome]:
        """The outcomes of finished jobs the consumer has not taken (when it left early)."""
        ready = [outcome for outcomes in self._ready.values() for outcome in outcomes]
        return ready + [outcome for outcomes in self._done for outcome in outcomes]

    @property
    def waiting_for(self) -> int:
        """The number of the job whose outcomes the consumer takes next in input order."""
        return self._handed

    @property
    def finished(self) -> bool:
        """Every job taken has been handed over and nothing more will be taken."""
        return self.exhausted and self._claimed == 0 and self._handed == self._taken


# -- the one scheduler of send_many: threads and asyncio only perform its commands --------------


class _Read:
    """Command: the next job from the input (``None`` when it is used up); a failure is thrown in."""

    def __repr__(self) -> str:
        return "READ"


READ: Final = _Read()


@dataclass(frozen=True, slots=True)
class Start:
    """Command: start sending job ``number`` (its outcomes come back through :class:`Wait`)."""

    number: int
    job: Job


@dataclass(frozen=True, slots=True)
class Hand:
    """Command: give ``outcomes`` to the consumer, then resume."""

    outcomes: list[SendOutcome]


@dataclass(frozen=True, slots=True)
class Wait:
    """Command: wait until a started job is done — job ``number`` when given (input order), else
    any — and resume with every ``(number, outcomes)`` done by then; a job's bug is raised."""

    number: int | None


def schedule(pipeline: Pipeline) -> Generator[_Read | Start | Hand | Wait, object, None]:
    """One ``send_many`` run: which job to read and start, when to hand which outcomes over, when
    to wait. No I/O: ``Client`` performs the commands with a thread pool, ``AsyncClient`` with
    asyncio workers. Ends when every outcome was handed over; then raises the input's failure, if
    reading it failed.
    """
    while True:
        while pipeline.claim():
            try:
                job = yield READ
            except Exception as exc:  # noqa: BLE001 - the input failed: raised after the outcomes due
                pipeline.broke(exc)
                break
            number = pipeline.took(job)  # type: ignore[arg-type]
            if job is None or number is None:
                break
            yield Start(number, job)  # type: ignore[arg-type]
        outcomes = pipeline.next_outcomes()
        if outcomes is not None:
            yield Hand(outcomes)
            continue
        if pipeline.finished:
            if pipeline.failure is not None:
                raise pipeline.failure
            return
        done = yield Wait(pipeline.waiting_for if pipeline.order == "input" else None)
        for number, outcomes in done:  # type: ignore[attr-defined]
            pipeline.finish(number, outcomes)
