"""Input an outsider controls, made as bad as the transport allows (DESIGN §11): garbage
bytes for a request message, a megabyte where a hash goes. Each gets a typed refusal of
bounded size, and the log a bounded number of lines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_ERROR_TEXT_CHARS
from sparkchain.proto import api_pb2, api_pb2_grpc
from tests.helpers.api_node import ApiNode


@pytest.fixture
async def node(tmp_path) -> AsyncIterator[ApiNode]:
    started = await ApiNode(tmp_path / "ledger").start()
    yield started
    await started.stop()


# ---- error texts (finding 9) ----


def test_an_error_message_is_cut_to_the_limit_with_its_original_length() -> None:
    error = SparkError(ErrorCode.NOT_FOUND, "x" * 5000)
    assert len(error.message) == MAX_ERROR_TEXT_CHARS
    assert error.message.endswith("… (5000 chars)")
    assert str(error) == f"NOT_FOUND: {error.message}"
    assert SparkError(ErrorCode.NOT_FOUND, "short").message == "short"


async def test_a_megabyte_hash_does_not_come_back_as_two_megabytes_of_hex(node) -> None:
    async with grpc.aio.insecure_channel(node.address) as channel:
        chain = api_pb2_grpc.ChainStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await chain.GetTx(api_pb2.GetTxRequest(tx_id=b"\x01" * 1024 * 1024))
    error = caught.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    details = error.details() or ""
    assert details.startswith("NOT_FOUND: no committed tx with id 0101")
    assert len(details) <= len("NOT_FOUND: ") + MAX_ERROR_TEXT_CHARS
    assert details.endswith(f"… ({2 * 1024 * 1024 + len('no committed tx with id ')} chars)")
