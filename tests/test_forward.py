"""An observer's writes (DESIGN §11, node/forward.py): it never admits a client's tx
itself; it forwards Submit and SubmitStream to a validator's API and relays the answer,
refusals included, or refuses READ_ONLY when it has no validator to forward to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from sparkchain.identifiers.errors import ERROR_CODE_METADATA_KEY, ErrorCode
from sparkchain.identifiers.tx import value
from sparkchain.node.forward import SubmitForwarder
from sparkchain.node.home import free_loopback_ports
from sparkchain.proto import api_pb2, api_pb2_grpc
from sparkchain.proto import types_pb2 as pb
from tests.helpers.api_node import ApiNode, wall_ms
from tests.helpers.chain import TxMaker, key


def register_tx(node: ApiNode, suffix: str) -> pb.SignedTx:
    return TxMaker(node.genesis.chain_id, key("acme"), 1).register(
        f"88/{suffix}", [value(1, "URL", f"https://example.cn/{suffix}")], now_ms=wall_ms()
    )


@pytest.fixture
async def validator(tmp_path) -> AsyncIterator[ApiNode]:
    started = await ApiNode(tmp_path / "validator").start()
    yield started
    await started.stop()


async def observer_of(tmp_path, validator: ApiNode, forwarder: SubmitForwarder | None) -> ApiNode:
    return await ApiNode(
        tmp_path / "observer", validator.genesis, role="observer", forwarder=forwarder
    ).start(auto_commit=False)


async def test_writes_go_to_the_first_validator_that_answers(tmp_path, validator) -> None:
    dead = f"127.0.0.1:{free_loopback_ports(1)[0]}"  # nobody listens there
    forwarder = SubmitForwarder([dead, validator.address])
    observer = await observer_of(tmp_path, validator, forwarder)
    try:
        async with grpc.aio.insecure_channel(observer.address) as channel:
            stub = api_pb2_grpc.IdentifiersStub(channel)
            tx = register_tx(validator, "FWD-1")
            answer = await stub.Submit(api_pb2.SubmitRequest(tx=tx, wait_for_commit=True))
            assert answer.committed and answer.height == validator.ledger.height
            assert validator.ledger.resolve("88/FWD-1").identifier == "88/FWD-1"
            assert len(observer.mempool) == 0  # the observer took nothing itself

            # the validator's refusal arrives as the validator said it
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Submit(api_pb2.SubmitRequest(tx=register_tx(validator, "FWD-1")))
            assert caught.value.code() is grpc.StatusCode.ALREADY_EXISTS
            assert caught.value.details().startswith("EXISTS: ")
            metadata = tuple(caught.value.trailing_metadata())
            assert (ERROR_CODE_METADATA_KEY, str(ErrorCode.EXISTS)) in metadata

            txs = [register_tx(validator, f"FWD-S{i}") for i in range(5)]
            requests = [api_pb2.SubmitRequest(tx=t, wait_for_commit=True) for t in txs]
            answers = [a async for a in stub.SubmitStream(iter(requests))]
            assert [a.committed for a in answers] == [True] * 5
            assert validator.ledger.resolve("88/FWD-S4").identifier == "88/FWD-S4"
    finally:
        await observer.stop()
        await forwarder.close()


async def test_no_validator_answering_is_unavailable_naming_them(tmp_path, validator) -> None:
    dead = [f"127.0.0.1:{port}" for port in free_loopback_ports(2)]
    forwarder = SubmitForwarder(dead)
    observer = await observer_of(tmp_path, validator, forwarder)
    try:
        async with grpc.aio.insecure_channel(observer.address) as channel:
            stub = api_pb2_grpc.IdentifiersStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Submit(api_pb2.SubmitRequest(tx=register_tx(validator, "X")))
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
            assert all(address in caught.value.details() for address in dead)
            assert len(observer.mempool) == 0
    finally:
        await observer.stop()
        await forwarder.close()


async def test_an_observer_without_validators_refuses_writes_read_only(tmp_path, validator) -> None:
    observer = await observer_of(tmp_path, validator, None)
    try:
        async with grpc.aio.insecure_channel(observer.address) as channel:
            stub = api_pb2_grpc.IdentifiersStub(channel)
            request = api_pb2.SubmitRequest(tx=register_tx(validator, "RO"))
            with pytest.raises(grpc.aio.AioRpcError) as unary:
                await stub.Submit(request)
            with pytest.raises(grpc.aio.AioRpcError) as streamed:
                _ = [a async for a in stub.SubmitStream(iter([request]))]
            for caught in (unary, streamed):
                assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
                assert caught.value.details().startswith("READ_ONLY: ")
                assert "submit_to" in caught.value.details()
            assert len(observer.mempool) == 0
    finally:
        await observer.stop()
