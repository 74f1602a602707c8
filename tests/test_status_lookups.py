"""Status lookups of many ids (``Client.get_statuses``): batched where the vendor takes several ids
a lookup (``Provider.status_batch``), one by one elsewhere; and the ``Provider.exchange`` hook every
step of the base's flows passes through."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from omnisend import Client, DeliveryStatus, Message, NotFound, RetryPolicy, ValidationError
from omnisend.providers import Clickatell, Mobizon
from omnisend.providers.base import Flow, R, Step
from omnisend.routing import Failover
from omnisend.testing.clickatell import ClickatellEmulator
from omnisend.testing.mobizon import MobizonEmulator
from tests.conftest import inprocess_async_client, inprocess_client

NUMBERS = [f"+7701{n:07d}" for n in range(250)]


def asked(emulator: MobizonEmulator) -> list[int]:
    """How many ids each getSMSStatus request asked for."""
    lookups = [r for r in emulator.requests if r.path == "/service/message/getSMSStatus"]
    return [len(parse_qsl(r.body.decode())) for r in lookups]


def test_get_statuses_asks_in_batches_of_the_vendors_size_in_order(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    with inprocess_client(emulator, policy) as client:
        ids = [r.message_id or "" for r in client.send(Message(to=NUMBERS, text="x")).recipients]
        emulator.requests.clear()
        reports = client.get_statuses([*ids, "404"])
    assert client.provider.status_batch == 100 and asked(emulator) == [100, 100, 51]
    assert [r.message_id for r in reports] == [*ids, "404"]
    assert {r.status for r in reports[:250]} == {DeliveryStatus.QUEUED} and reports[
        250
    ].status is DeliveryStatus.UNKNOWN
    assert reports[250].error is not None and reports[250].error.error_class == "NotFound"


@pytest.mark.anyio
async def test_get_statuses_async_follows_the_home_domain_once(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator(home_domain="api.mobizon.ua")
    async with inprocess_async_client(emulator, policy) as client:
        ids = [r.message_id or "" for r in (await client.send(Message(to=NUMBERS[:150], text="x"))).recipients]
        emulator.requests.clear()
        reports = await client.get_statuses(ids)
    assert [r.message_id for r in reports] == ids and asked(emulator) == [100, 50]
    assert [r.path for r in emulator.requests] == ["/service/message/getSMSStatus"] * 2  # no 13 any more


def test_get_statuses_checks_every_id_before_the_first_request(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    with inprocess_client(emulator, policy) as client:
        for ids in (["1", " "], ["1", 2], [""]):
            with pytest.raises(ValidationError, match="message_id is empty"):
                client.get_statuses(ids)  # type: ignore[arg-type]
        assert client.get_statuses([]) == []
    assert emulator.requests == []


def test_get_statuses_one_by_one_where_the_vendor_takes_one_id(policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator()
    with inprocess_client(emulator, policy) as client:
        ids = [str(client.send(Message(to=f"+4477009000{n:02d}", text="x")).message_id) for n in range(3)]
        emulator.deliver(ids[1])
        emulator.requests.clear()
        reports = client.get_statuses(reversed(ids))
        with pytest.raises(NotFound):
            client.get_statuses([ids[0], "nope"])
    assert Clickatell.status_batch == 1 and len(emulator.requests) == 3 + 2
    assert [r.message_id for r in reports] == ids[::-1]
    assert [r.status for r in reports] == [DeliveryStatus.QUEUED, DeliveryStatus.DELIVERED, DeliveryStatus.QUEUED]


def test_get_statuses_through_a_router_batches_as_its_route_does(policy: RetryPolicy) -> None:
    emulator = MobizonEmulator()
    mobizon = emulator.make_provider("http://emulator.test")
    with Client(Failover(mobizon), retry=policy, http_client=httpx.Client(transport=emulator.transport())) as client:
        ids = [r.message_id or "" for r in client.send(Message(to=NUMBERS[:120], text="x")).recipients]
        emulator.requests.clear()
        reports = client.get_statuses(ids)
    assert [r.message_id for r in reports] == ids and asked(emulator) == [100, 20]


class Counted(Clickatell):
    """A provider wrapping each step of the base's flows: counts them."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.steps: list[str] = []

    def exchange(self, step: Step[R]) -> Flow[R]:
        self.steps.append(step.request.url.path)
        value: R = yield step
        return value


def test_every_step_of_the_base_flows_passes_through_exchange(policy: RetryPolicy) -> None:
    emulator = ClickatellEmulator()
    provider = Counted(api_key=emulator.credentials[0], base_url="http://emulator.test")
    with Client(provider, retry=policy, http_client=httpx.Client(transport=emulator.transport())) as client:
        result = client.send(Message(to="+447700900001", text="x"))  # one request: no shortcut around the hook
        client.get_statuses([str(result.message_id)] * 2)
    assert provider.steps == [
        "/v1/message",
        "/v1/message/" + str(result.message_id),
        "/v1/message/" + str(result.message_id),
    ]


def test_a_batched_answer_is_matched_to_the_ids_asked_whatever_its_order(policy: RetryPolicy) -> None:
    """The adapter says which reports an answer holds; the base orders them by the ids asked and
    reads an id none of them names as UNKNOWN with a NotFound reason."""
    items = [{"id": "3", "status": "DELIVRD"}, {"id": 1, "status": "UNDELIV"}, {"id": "9", "status": "DELIVRD"}]
    answer = httpx.Response(200, json={"code": 0, "data": items, "message": ""})
    transport = httpx.MockTransport(lambda request: answer)
    with Client(Mobizon(api_key="k" * 40), retry=policy, http_client=httpx.Client(transport=transport)) as client:
        reports = client.get_statuses(["1", "2", "3"])
    assert [(r.message_id, r.status) for r in reports] == [
        ("1", DeliveryStatus.UNDELIVERED),
        ("2", DeliveryStatus.UNKNOWN),
        ("3", DeliveryStatus.DELIVERED),
    ]
    assert reports[1].error is not None and reports[1].error.error_class == "NotFound" and reports[1].raw is None


def test_one_string_is_refused_not_read_as_its_characters() -> None:
    """``get_statuses("123")`` would look up "1", "2" and "3": refused before any request."""
    with pytest.raises(ValidationError, match="message_ids is one string") as info:
        list(Mobizon(api_key="k3y").statuses_flow("123"))
    assert info.value.field == "message_ids"
