"""The public gRPC API against a real ledger (tests/helpers/api_node.py): every call, the
status codes and project error codes a client sees, streams, health and reflection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sparkchain.cli.rpc_errors import from_rpc_error
from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.errors import (
    ERROR_CODE_METADATA_KEY,
    ERROR_DETAILS_METADATA_KEY,
    ErrorCode,
)
from sparkchain.identifiers.limits import MAX_WATCH_STREAMS_PER_CLIENT
from sparkchain.identifiers.tx import tx_id, value
from sparkchain.ledger.genesis import parse_genesis
from sparkchain.ledger.proof import verify_resolution
from sparkchain.node.events import CommitBus
from sparkchain.node.mempool import MempoolLimits
from sparkchain.proto import api_pb2, api_pb2_grpc
from sparkchain.proto import types_pb2 as pb
from tests.helpers.api_node import ApiNode, wall_ms
from tests.helpers.chain import TxMaker, key


@dataclass
class Client:
    ids: api_pb2_grpc.IdentifiersStub
    chain: api_pb2_grpc.ChainStub
    channel: grpc.aio.Channel


@pytest.fixture
async def node(tmp_path) -> AsyncIterator[ApiNode]:
    started = await ApiNode(tmp_path / "ledger").start()
    yield started
    await started.stop()


@pytest.fixture
async def client(node: ApiNode) -> AsyncIterator[Client]:
    channel = grpc.aio.insecure_channel(node.address)
    yield Client(api_pb2_grpc.IdentifiersStub(channel), api_pb2_grpc.ChainStub(channel), channel)
    await channel.close()


def maker(node: ApiNode, name: str = "acme", seed: int = 1) -> TxMaker:
    return TxMaker(node.genesis.chain_id, key(name), seed)


def register_tx(node: ApiNode, suffix: str, name: str = "acme", seed: int = 1) -> pb.SignedTx:
    return maker(node, name, seed).register(
        f"88/{suffix}", [value(1, "URL", f"https://example.cn/{suffix}")], now_ms=wall_ms()
    )


async def expect_error(call, status: grpc.StatusCode, code: ErrorCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert error.code() == status, error.details()
    assert error.details().startswith(f"{code}: ")
    assert (ERROR_CODE_METADATA_KEY, str(code)) in tuple(error.trailing_metadata())
    return error.details()


# ---- Submit ----


async def test_submit_waiting_for_commit_returns_height_and_index(node, client):
    tx = register_tx(node, "SN-1")
    answer = await client.ids.Submit(api_pb2.SubmitRequest(tx=tx, wait_for_commit=True))
    assert answer.committed and answer.tx_id == tx_id(tx)
    assert answer.height == node.ledger.height == 1 and answer.index == 0
    resolved = await client.ids.Resolve(api_pb2.ResolveRequest(identifier="88/sn-1"))
    assert resolved.record.identifier == "88/SN-1"
    assert resolved.record.values[0].data == b"https://example.cn/SN-1"


async def test_submit_without_wait_returns_after_admission(node, client):
    await node.pause()
    tx = register_tx(node, "A")
    answer = await client.ids.Submit(api_pb2.SubmitRequest(tx=tx))
    assert answer.tx_id == tx_id(tx) and not answer.committed
    assert tx_id(tx) in node.mempool
    assert node.commit_pending() == 1
    assert tx_id(tx) not in node.mempool


async def test_register_under_foreign_prefix_is_permission_denied(node, client):
    tx = register_tx(node, "X", name="mallory")
    details = await expect_error(
        client.ids.Submit(api_pb2.SubmitRequest(tx=tx)),
        grpc.StatusCode.PERMISSION_DENIED,
        ErrorCode.UNAUTHORIZED,
    )
    assert "88" in details
    assert len(node.mempool) == 0


async def test_duplicate_registration_is_already_exists(node, client):
    await client.ids.Submit(api_pb2.SubmitRequest(tx=register_tx(node, "D"), wait_for_commit=True))
    await expect_error(
        client.ids.Submit(api_pb2.SubmitRequest(tx=register_tx(node, "D", seed=2))),
        grpc.StatusCode.ALREADY_EXISTS,
        ErrorCode.EXISTS,
    )


async def test_same_tx_twice_is_duplicate_tx(node, client):
    await node.pause()
    tx = register_tx(node, "T")
    await client.ids.Submit(api_pb2.SubmitRequest(tx=tx))
    await expect_error(
        client.ids.Submit(api_pb2.SubmitRequest(tx=tx)),
        grpc.StatusCode.ALREADY_EXISTS,
        ErrorCode.DUPLICATE_TX,
    )
    node.commit_pending()
    await expect_error(  # and once committed, the ledger itself refuses it
        client.ids.Submit(api_pb2.SubmitRequest(tx=tx)),
        grpc.StatusCode.ALREADY_EXISTS,
        ErrorCode.DUPLICATE_TX,
    )


async def test_the_same_tx_sent_again_waiting_for_its_commit_gets_its_commit(node, client):
    # a client whose answer was lost (or an observer forwarding to the next validator)
    # sends the tx again: what it waits for is that tx's outcome, not DUPLICATE_TX
    await node.pause()
    tx = register_tx(node, "AGAIN")
    await client.ids.Submit(api_pb2.SubmitRequest(tx=tx))
    waiting = asyncio.ensure_future(
        client.ids.Submit(api_pb2.SubmitRequest(tx=tx, wait_for_commit=True, timeout_ms=20_000))
    )
    await asyncio.sleep(0.2)
    assert not waiting.done()  # still pending: it waits for the block
    node.commit_pending()
    answer = await waiting
    assert answer.committed and answer.tx_id == tx_id(tx) and answer.height == node.ledger.height
    again = await client.ids.Submit(api_pb2.SubmitRequest(tx=tx, wait_for_commit=True))
    assert (again.committed, again.height, again.index) == (True, answer.height, answer.index)

    async def send() -> AsyncIterator[api_pb2.SubmitRequest]:
        yield api_pb2.SubmitRequest(tx=tx, wait_for_commit=True)

    (streamed,) = [a async for a in client.ids.SubmitStream(send())]
    assert streamed.committed and not streamed.error_code and streamed.height == answer.height


async def test_bad_signature_wrong_chain_and_expiry_are_invalid_argument(node, client):
    tampered = register_tx(node, "S")
    tampered.signature = bytes(64)
    await expect_error(
        client.ids.Submit(api_pb2.SubmitRequest(tx=tampered)),
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorCode.BAD_SIGNATURE,
    )
    other_chain = TxMaker("another-chain", key("acme"), 1).register("88/S", now_ms=wall_ms())
    await expect_error(
        client.ids.Submit(api_pb2.SubmitRequest(tx=other_chain)),
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorCode.WRONG_CHAIN,
    )
    stale = maker(node).register("88/S", now_ms=wall_ms() - 3_600_000, lifetime_ms=1000)
    await expect_error(
        client.ids.Submit(api_pb2.SubmitRequest(tx=stale)),
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorCode.EXPIRED,
    )


async def test_oversized_value_is_refused_with_its_code(node, client):
    big = maker(node).register("88/BIG", [value(1, "DATA", b"x" * 20_000)], now_ms=wall_ms())
    details = await expect_error(
        client.ids.Submit(api_pb2.SubmitRequest(tx=big)),
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorCode.TOO_LARGE,
    )
    assert "20000" in details


async def test_submit_wait_times_out_with_deadline_exceeded(node, client):
    await node.pause()
    await expect_error(
        client.ids.Submit(
            api_pb2.SubmitRequest(tx=register_tx(node, "W"), wait_for_commit=True, timeout_ms=30)
        ),
        grpc.StatusCode.DEADLINE_EXCEEDED,
        ErrorCode.TIMEOUT,
    )
    assert len(node.mempool) == 1  # admitted: it may still commit


async def test_full_mempool_is_resource_exhausted(tmp_path):
    node = await ApiNode(
        tmp_path / "ledger", limits=MempoolLimits(max_txs=2, signer_share_percent=100)
    ).start(auto_commit=False)
    try:
        async with grpc.aio.insecure_channel(node.address) as channel:
            ids = api_pb2_grpc.IdentifiersStub(channel)
            for suffix in ("1", "2"):
                await ids.Submit(api_pb2.SubmitRequest(tx=register_tx(node, suffix)))
            details = await expect_error(
                ids.Submit(api_pb2.SubmitRequest(tx=register_tx(node, "3"))),
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                ErrorCode.MEMPOOL_FULL,
            )
            assert "limit 2" in details
    finally:
        await node.stop()


async def test_waiter_learns_when_a_proposer_rejects_its_tx(node, client):
    await node.pause()
    first = register_tx(node, "RACE", seed=1)
    second = register_tx(node, "RACE", seed=2)  # both pass admission: neither is committed
    await client.ids.Submit(api_pb2.SubmitRequest(tx=first))
    waiting = asyncio.ensure_future(
        client.ids.Submit(api_pb2.SubmitRequest(tx=second, wait_for_commit=True))
    )
    while len(node.mempool) < 2:  # admitted, so its commit waiter is registered
        await asyncio.sleep(0.005)
    node.commit_pending()
    await expect_error(waiting, grpc.StatusCode.ALREADY_EXISTS, ErrorCode.EXISTS)


# ---- SubmitStream ----


async def test_submit_stream_answers_each_request_in_order_without_ending(node, client):
    good = [register_tx(node, f"S{i}", seed=i) for i in range(5)]
    foreign = register_tx(node, "F", name="mallory")
    requests = [
        api_pb2.SubmitRequest(tx=good[0], wait_for_commit=True),
        api_pb2.SubmitRequest(tx=foreign, wait_for_commit=True),
        api_pb2.SubmitRequest(tx=good[1]),
        api_pb2.SubmitRequest(tx=good[1]),  # the same tx again
        *(api_pb2.SubmitRequest(tx=t, wait_for_commit=True) for t in good[2:]),
    ]

    async def send() -> AsyncIterator[api_pb2.SubmitRequest]:
        for request in requests:
            yield request

    answers = [a async for a in client.ids.SubmitStream(send())]
    assert [a.tx_id for a in answers] == [tx_id(r.tx) for r in requests]
    assert answers[0].committed and not answers[0].error_code
    assert answers[1].error_code == "UNAUTHORIZED" and answers[1].error_message
    assert not answers[2].error_code and not answers[2].committed
    assert answers[3].error_code == "DUPLICATE_TX"
    assert all(a.committed and a.height >= 1 for a in answers[4:])


async def test_submit_stream_answers_requests_without_a_tx_as_invalid(node, client):
    async def send() -> AsyncIterator[api_pb2.SubmitRequest]:
        yield api_pb2.SubmitRequest()
        yield api_pb2.SubmitRequest(wait_for_commit=True)
        yield api_pb2.SubmitRequest(tx=register_tx(node, "NT"))

    answers = [a async for a in client.ids.SubmitStream(send())]
    assert [(a.error_code, a.error_message, a.tx_id) for a in answers[:2]] == [
        ("INVALID_TX", "request has no tx", b"")
    ] * 2
    assert answers[2].tx_id and not answers[2].error_code


async def test_submit_stream_carries_register_batches(node, client):
    batch = maker(node).register_batch(
        "88", [(f"B{i}", [value(1, "URL", f"u{i}")]) for i in range(200)], now_ms=wall_ms()
    )

    async def send() -> AsyncIterator[api_pb2.SubmitRequest]:
        yield api_pb2.SubmitRequest(tx=batch, wait_for_commit=True)

    (answer,) = [a async for a in client.ids.SubmitStream(send())]
    assert answer.committed, answer.error_message
    listed = await client.ids.List(api_pb2.ListRequest(prefix="88", page_size=1000))
    assert len(listed.records) == 200


async def test_a_refused_batch_names_its_item_in_the_error_details(node, client):
    items = [(f"E{i}", [value(1, "URL", f"u{i}")]) for i in range(5)]
    items[3] = ("E\x07", [value(1, "URL", "u")])
    batch = maker(node).register_batch("88", items, now_ms=wall_ms())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client.ids.Submit(api_pb2.SubmitRequest(tx=batch))
    trailing = dict(caught.value.trailing_metadata())
    details = api_pb2.ErrorDetails.FromString(trailing[ERROR_DETAILS_METADATA_KEY])
    assert details.code == ErrorCode.INVALID_IDENTIFIER and details.item_index == 3
    # the CLI's translation carries the field on
    translated = from_rpc_error(caught.value, node.address)
    assert (translated.code, translated.item_index) == (ErrorCode.INVALID_IDENTIFIER, 3)

    async def send() -> AsyncIterator[api_pb2.SubmitRequest]:
        yield api_pb2.SubmitRequest(tx=batch, wait_for_commit=True)

    (answer,) = [a async for a in client.ids.SubmitStream(send())]
    assert answer.error_code == ErrorCode.INVALID_IDENTIFIER
    assert answer.HasField("error_item_index") and answer.error_item_index == 3


# ---- reads ----


async def test_resolve_filters_by_type_and_index(node, client):
    tx = maker(node).register(
        "88/F",
        [value(1, "URL", "u"), value(2, "EMAIL", "e"), value(3, "DESC", "d")],
        now_ms=wall_ms(),
    )
    await client.ids.Submit(api_pb2.SubmitRequest(tx=tx, wait_for_commit=True))
    answer = await client.ids.Resolve(
        api_pb2.ResolveRequest(identifier="88/F", types=["EMAIL"], indexes=[3])
    )
    assert [v.index for v in answer.record.values] == [2, 3]
    assert answer.height == 1


async def test_resolve_unknown_and_malformed_identifiers(node, client):
    await expect_error(
        client.ids.Resolve(api_pb2.ResolveRequest(identifier="88/NOPE")),
        grpc.StatusCode.NOT_FOUND,
        ErrorCode.NOT_FOUND,
    )
    await expect_error(
        client.ids.Resolve(api_pb2.ResolveRequest(identifier="no slash")),
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorCode.INVALID_IDENTIFIER,
    )


async def test_resolve_with_proof_verifies_presence_and_absence(node, client):
    await client.ids.Submit(api_pb2.SubmitRequest(tx=register_tx(node, "P"), wait_for_commit=True))
    validators = node.genesis.validator_keys
    present = await client.ids.Resolve(
        api_pb2.ResolveRequest(identifier="88/P", with_proof=True, types=["NONE"])
    )
    assert present.found and present.height == 1
    assert list(present.record.values) == []  # the filter applies to the record shown
    record, height = verify_resolution(validators, node.genesis.chain_id, "88/P", present.proof)
    assert record is not None and record.identifier == "88/P" and height == 1
    assert len(record.values) == 1  # the proof covers the whole record
    absent = await client.ids.Resolve(api_pb2.ResolveRequest(identifier="88/Q", with_proof=True))
    assert not absent.found
    record, _ = verify_resolution(validators, node.genesis.chain_id, "88/Q", absent.proof)
    assert record is None


async def test_resolve_at_a_height_proves_that_block_and_a_pruned_one_is_out_of_range(tmp_path):
    node = await ApiNode(tmp_path / "pruning", keep_heights=2).start(auto_commit=False)
    channel = grpc.aio.insecure_channel(node.address)
    try:
        ids = api_pb2_grpc.IdentifiersStub(channel)
        acme = maker(node)
        node.commit_now([register_tx(node, "A")])  # 1
        for n in (2, 3, 4):
            update = acme.update("88/A", [value(1, "URL", f"https://v{n}")], now_ms=wall_ms())
            node.commit_now([update])
        answer = await ids.Resolve(
            api_pb2.ResolveRequest(identifier="88/A", with_proof=True, height=3)
        )
        record, height = verify_resolution(
            node.genesis.validator_keys, node.genesis.chain_id, "88/A", answer.proof
        )
        assert height == answer.height == 3
        assert record is not None and record.values[0].data == b"https://v3"
        # without a proof, any height is answered from the history
        plain = await ids.Resolve(api_pb2.ResolveRequest(identifier="88/A", height=1))
        assert plain.height == 1 and plain.record.values[0].data != b"https://v3"
        details = await expect_error(
            ids.Resolve(api_pb2.ResolveRequest(identifier="88/A", with_proof=True, height=2)),
            grpc.StatusCode.OUT_OF_RANGE,
            ErrorCode.HEIGHT_PRUNED,
        )
        assert "from height 3 on" in details
    finally:
        await channel.close()
        await node.stop()


async def test_history_list_and_prefix_info(node, client):
    acme = maker(node)
    await client.ids.Submit(api_pb2.SubmitRequest(tx=register_tx(node, "H"), wait_for_commit=True))
    update = acme.update("88/H", [value(2, "EMAIL", "x@y.cn")], now_ms=wall_ms())
    await client.ids.Submit(api_pb2.SubmitRequest(tx=update, wait_for_commit=True))
    history = await client.ids.History(api_pb2.HistoryRequest(identifier="88/H"))
    assert [e.operation for e in history.entries] == ["register", "update"]
    assert history.entries[1].signer == bid_from_public_key(key("acme").public_key)

    batch = acme.register_batch("88", [(f"L{i:02}", []) for i in range(5)], now_ms=wall_ms())
    await client.ids.Submit(api_pb2.SubmitRequest(tx=batch, wait_for_commit=True))
    first = await client.ids.List(api_pb2.ListRequest(prefix="88", page_size=4))
    assert len(first.records) == 4 and first.next_page_token
    rest = await client.ids.List(
        api_pb2.ListRequest(prefix="88", page_size=4, page_token=first.next_page_token)
    )
    listed = [r.identifier for r in [*first.records, *rest.records]]
    assert listed == sorted(listed) and len(listed) == 6 and not rest.next_page_token

    sub = acme.create_prefix("88.608", acme.bid, now_ms=wall_ms())
    await client.ids.Submit(api_pb2.SubmitRequest(tx=sub, wait_for_commit=True))
    info = await client.ids.PrefixInfo(api_pb2.PrefixInfoRequest(prefix="88"))
    assert info.prefix.owner == acme.bid and list(info.children) == ["88.608"]


async def test_watch_replays_from_a_height_then_follows_one_prefix(node, client):
    acme = maker(node)
    await client.ids.Submit(api_pb2.SubmitRequest(tx=register_tx(node, "W1"), wait_for_commit=True))
    sub = acme.create_prefix("88.7", acme.bid, now_ms=wall_ms())
    await client.ids.Submit(api_pb2.SubmitRequest(tx=sub, wait_for_commit=True))
    stream = client.ids.Watch(api_pb2.WatchRequest(prefix="88.7", from_height=1))
    events = stream.__aiter__()
    replayed = await asyncio.wait_for(events.__anext__(), 5)
    assert replayed.height == 2 and replayed.prefix == "88.7"
    # 88/W2 is not under 88.7: only 88.7/ITEM reaches this watcher
    await client.ids.Submit(api_pb2.SubmitRequest(tx=register_tx(node, "W2"), wait_for_commit=True))
    item = acme.register("88.7/ITEM", now_ms=wall_ms())
    await client.ids.Submit(api_pb2.SubmitRequest(tx=item, wait_for_commit=True))
    live = await asyncio.wait_for(events.__anext__(), 5)
    assert live.identifier == "88.7/ITEM" and live.operation == "register" and live.height == 4
    stream.cancel()
    for _ in range(500):  # the server notices the cancellation on its next loop turns
        if node.bus.subscriber_count == 0:
            break
        await asyncio.sleep(0.01)
    assert node.bus.subscriber_count == 0


async def open_watch_streams(node: ApiNode, client: Client, count: int) -> list[object]:
    """`count` Watch streams that never read, each subscribed on the node when this returns."""
    before = node.bus.subscriber_count
    streams = [client.ids.Watch(api_pb2.WatchRequest(prefix="88")) for _ in range(count)]
    for _ in range(500):
        if node.bus.subscriber_count == before + count:
            return streams
        await asyncio.sleep(0.01)
    raise AssertionError(f"{node.bus.subscriber_count - before} of {count} streams subscribed")


async def next_event(stream) -> api_pb2.ChangeEvent:
    return await asyncio.wait_for(stream.__aiter__().__anext__(), 5)


async def test_watch_streams_over_the_per_client_cap_are_resource_exhausted(node, client):
    held = await open_watch_streams(node, client, MAX_WATCH_STREAMS_PER_CLIENT)
    refused = client.ids.Watch(api_pb2.WatchRequest(prefix="88"))
    details = await expect_error(
        next_event(refused), grpc.StatusCode.RESOURCE_EXHAUSTED, ErrorCode.LIMIT_EXCEEDED
    )
    assert f"MAX_WATCH_STREAMS_PER_CLIENT ({MAX_WATCH_STREAMS_PER_CLIENT})" in details
    assert "127.0.0.1" in details
    assert node.bus.subscriber_count == MAX_WATCH_STREAMS_PER_CLIENT
    held.pop().cancel()  # a closed stream frees its place
    for _ in range(500):
        if node.bus.subscriber_count < MAX_WATCH_STREAMS_PER_CLIENT:
            break
        await asyncio.sleep(0.01)
    held += await open_watch_streams(node, client, 1)
    for stream in held:
        stream.cancel()


async def test_watch_streams_over_the_node_cap_are_resource_exhausted(tmp_path):
    node = await ApiNode(tmp_path / "ledger", bus=CommitBus(max_streams=3)).start()
    channel = grpc.aio.insecure_channel(node.address)
    client = Client(api_pb2_grpc.IdentifiersStub(channel), api_pb2_grpc.ChainStub(channel), channel)
    try:
        held = await open_watch_streams(node, client, 3)
        details = await expect_error(
            next_event(client.ids.Watch(api_pb2.WatchRequest())),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            ErrorCode.LIMIT_EXCEEDED,
        )
        assert "MAX_WATCH_STREAMS (3)" in details
        # the streams held still get their changes
        await client.ids.Submit(
            api_pb2.SubmitRequest(tx=register_tx(node, "CAP"), wait_for_commit=True)
        )
        assert [(await next_event(s)).identifier for s in held] == ["88/CAP"] * 3
        for stream in held:
            stream.cancel()
    finally:
        await channel.close()
        await node.stop()


async def test_a_watch_stream_whose_client_stops_reading_is_ended_with_its_reason(tmp_path):
    """Issue 10 finding 3: a client that opens Watch and never reads. Once gRPC's flow
    control stops the server's writes and the stream's next change has left the node's
    log, the node ends the call (it neither waits for a read that never comes nor holds
    the stream's place); the client, reading at last, gets what it was sent and then
    RESOURCE_EXHAUSTED naming WATCH_BACKLOG_EVENTS."""
    node = await ApiNode(tmp_path / "ledger", bus=CommitBus(backlog_events=10)).start(
        auto_commit=False
    )
    channel = grpc.aio.insecure_channel(node.address)
    client = Client(api_pb2_grpc.IdentifiersStub(channel), api_pb2_grpc.ChainStub(channel), channel)
    try:
        (stream,) = await open_watch_streams(node, client, 1)
        acme = maker(node)
        large = "x" * 16_000  # ~48 kB a change: a few blocks fill the flow-control window
        for block in range(8):
            items = [
                (f"BIG{block}-{i}", [value(index, "URL", large) for index in (1, 2, 3)])
                for i in range(50)
            ]
            node.commit_now([acme.register_batch("88", items, now_ms=wall_ms())])
            await asyncio.sleep(0.05)
        for _ in range(1000):
            if node.bus.subscriber_count == 0:
                break
            await asyncio.sleep(0.01)
        assert node.bus.subscriber_count == 0  # ended without the client reading
        received = 0
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _event in stream:
                received += 1
        assert 0 < received < 8 * 50
        error = caught.value
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        assert error.details().startswith("LIMIT_EXCEEDED: WATCH_BACKLOG_EVENTS (10)")
        assert "from_height" in error.details()
    finally:
        await channel.close()
        await node.stop()


async def test_status_get_block_get_tx_and_genesis(node, client):
    tx = register_tx(node, "C")
    committed = await client.ids.Submit(api_pb2.SubmitRequest(tx=tx, wait_for_commit=True))
    status = await client.chain.Status(api_pb2.StatusRequest())
    assert status.chain_id == node.genesis.chain_id and status.height == 1
    assert status.state_root == node.ledger.state_root
    assert status.last_block_hash == node.ledger.last_block_hash
    assert status.role == "validator" and status.peers[0].name == "node2"
    assert status.validator == node.genesis.validators[0].public_key
    by_height = await client.chain.GetBlock(api_pb2.GetBlockRequest(height=1))
    assert by_height.block_hash == node.ledger.last_block_hash
    assert by_height.header.height == 1 and by_height.commit.height == 1
    by_hash = await client.chain.GetBlock(api_pb2.GetBlockRequest(hash=by_height.block_hash))
    assert by_hash.block == by_height.block
    await expect_error(
        client.chain.GetBlock(api_pb2.GetBlockRequest(height=9)),
        grpc.StatusCode.NOT_FOUND,
        ErrorCode.NOT_FOUND,
    )
    got = await client.chain.GetTx(api_pb2.GetTxRequest(tx_id=committed.tx_id))
    assert got.tx == tx and (got.height, got.index) == (1, 0)
    genesis = await client.chain.Genesis(api_pb2.GenesisRequest())
    assert parse_genesis(genesis.genesis_json).genesis_hash == node.genesis.genesis_hash


async def test_health_serving_and_reflection_lists_services(node, client):
    health = health_pb2_grpc.HealthStub(client.channel)
    for service in ("", "spark.v1.Identifiers", "spark.v1.Chain"):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(client.channel)

    async def ask() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    (answer,) = [a async for a in reflection.ServerReflectionInfo(ask())]
    names = {s.name for s in answer.list_services_response.service}
    assert {"spark.v1.Identifiers", "spark.v1.Chain", "grpc.health.v1.Health"} <= names


async def test_submit_stream_waits_end_in_commit_rejection_or_timeout(node, client):
    await node.pause()
    first = register_tx(node, "RACE", seed=1)
    rival = register_tx(node, "RACE", seed=2)  # both pass admission: neither is committed
    slow = [register_tx(node, f"SLOW{i}", seed=10 + i) for i in range(3)]

    async def send(requests: list[api_pb2.SubmitRequest]) -> AsyncIterator[api_pb2.SubmitRequest]:
        for request in requests:
            yield request

    timing_out = [api_pb2.SubmitRequest(tx=t, wait_for_commit=True, timeout_ms=30) for t in slow]
    answers = [a async for a in client.ids.SubmitStream(send(timing_out))]
    assert [a.error_code for a in answers] == ["TIMEOUT"] * 3
    assert not any(a.committed for a in answers) and len(node.mempool) == 3
    assert node.bus.pending_waiters() == 0

    racing = [api_pb2.SubmitRequest(tx=t, wait_for_commit=True) for t in (first, rival)]
    stream = asyncio.ensure_future(_collect(client.ids.SubmitStream(send(racing))))
    while len(node.mempool) < 5:
        await asyncio.sleep(0.005)
    node.commit_pending()
    answers = await stream
    # two admission rounds may run at once: either of the two may be first in the block
    assert sorted((a.committed, a.error_code) for a in answers) == [(False, "EXISTS"), (True, "")]
    assert node.bus.pending_waiters() == 0


async def test_a_cancelled_submit_stream_leaves_no_waiters(node, client):
    await node.pause()

    async def send() -> AsyncIterator[api_pb2.SubmitRequest]:
        for i in range(20):
            yield api_pb2.SubmitRequest(tx=register_tx(node, f"C{i}", seed=i), wait_for_commit=True)
        await asyncio.Event().wait()  # the client keeps the stream open

    call = client.ids.SubmitStream(send())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while node.bus.pending_waiters() < 20:
        assert loop.time() < deadline, "the stream did not wait for its txs"
        await asyncio.sleep(0.005)
    call.cancel()
    while node.bus.pending_waiters():
        assert loop.time() < deadline, "waiters left behind by a cancelled stream"
        await asyncio.sleep(0.005)


async def _collect(call) -> list[api_pb2.SubmitResponse]:  # type: ignore[no-untyped-def]
    return [answer async for answer in call]
