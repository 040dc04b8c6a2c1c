"""Input an outsider controls, made as bad as the transport allows (DESIGN §11): garbage
bytes for a request message, a megabyte where a hash goes. Each gets a typed refusal of
bounded size, and the log a bounded number of lines."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from sparkchain.identifiers.errors import ERROR_CODE_METADATA_KEY, ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_ERROR_TEXT_CHARS
from sparkchain.node.home import init_home, load_genesis
from sparkchain.node.logs import RateLimitedLog
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


# ---- local files (finding 14) ----


def test_a_deeply_nested_genesis_is_invalid_genesis_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(SparkError) as caught:
        load_genesis(path)
    assert caught.value.code is ErrorCode.INVALID_GENESIS
    assert caught.value.message == f"{path}: nested too deeply to be a genesis"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_validator_key_open_to_others_is_refused_naming_the_file_and_the_fix(
    tmp_path: Path, mode: int
) -> None:
    written = init_home(tmp_path / "home")
    home = written.home
    path = home.validator_key_path
    path.chmod(mode)
    with pytest.raises(SparkError) as caught:
        home.node_key()
    assert caught.value.code is ErrorCode.INVALID_KEY
    assert str(path) in caught.value.message and f"mode {mode:04o}" in caught.value.message
    assert caught.value.message.endswith(f"chmod 600 {path}")
    path.chmod(0o600)
    assert home.node_key().public_key == written.node_public_key


# ---- rate-limited lines (findings 8 and 15) ----


def test_a_rate_limited_log_writes_one_line_per_key_per_interval_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0]
    lines = RateLimitedLog(
        logging.getLogger("test.rate"), 1000, max_keys=2, clock_ms=lambda: now[0]
    )
    caplog.set_level("DEBUG", logger="test.rate")
    written = [lines.log(logging.INFO, "peer-a", "refused", {}) for _ in range(5)]
    assert written == [True, False, False, False, False]
    assert lines.log(logging.INFO, "peer-b", "refused", {})  # another key has its own window
    now[0] = 1000
    assert lines.log(logging.INFO, "peer-a", "refused", {})
    assert [r.__dict__["left_out"] for r in caplog.records] == [0, 0, 4]


def test_a_rate_limited_log_forgets_the_oldest_key_beyond_its_bound() -> None:
    lines = RateLimitedLog(logging.getLogger("test.rate"), 1000, max_keys=2, clock_ms=lambda: 0)
    assert lines.log(logging.INFO, "peer-a", "refused", {})
    assert lines.log(logging.INFO, "peer-b", "refused", {})
    assert lines.log(logging.INFO, "peer-c", "refused", {})  # peer-a is forgotten
    assert not lines.log(logging.INFO, "peer-b", "refused", {})
    assert lines.log(logging.INFO, "peer-a", "refused", {})


# ---- malformed request messages (finding 8) ----

GARBAGE = b"\xff\xff\xff\xff"  # field 31, wire type 7: no such wire type
API_METHODS = [
    f"/{service.full_name}/{method.name}"
    for service in api_pb2.DESCRIPTOR.services_by_name.values()
    for method in service.methods
] + [
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
]


async def send_garbage(address: str, method: str) -> grpc.aio.AioRpcError:
    """`GARBAGE` as the one request message of `method` (raw bytes, no serializer)."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(GARBAGE, timeout=10)
    return caught.value


def assert_invalid_argument(error: grpc.aio.AioRpcError, method: str) -> None:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert (error.details() or "").startswith(
        f"INVALID_ARGUMENT: {method}: request does not decode"
    )
    assert (ERROR_CODE_METADATA_KEY, "INVALID_ARGUMENT") in tuple(error.trailing_metadata() or ())


async def test_a_request_that_does_not_decode_is_invalid_argument_on_every_api_method(
    node: ApiNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    assert len(API_METHODS) == 15
    for method in API_METHODS:
        for _ in range(3):
            assert_invalid_argument(await send_garbage(node.address, method), method)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    lines = [r for r in caplog.records if r.getMessage() == "malformed_request"]
    assert [r.__dict__["method"] for r in lines] == API_METHODS  # one line per method
    assert all(r.levelno == logging.DEBUG and not r.exc_info for r in lines)
    async with grpc.aio.insecure_channel(node.address) as channel:  # still serving
        status = await api_pb2_grpc.ChainStub(channel).Status(api_pb2.StatusRequest())
    assert status.height == node.ledger.height
