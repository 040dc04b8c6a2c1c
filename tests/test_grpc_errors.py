"""Servicer error translation: a SparkError keeps its code; a bug becomes INTERNAL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from sparkchain.identifiers.errors import (
    ERROR_CODE_METADATA_KEY,
    ERROR_DETAILS_METADATA_KEY,
    ErrorCode,
    SparkError,
)
from sparkchain.node.grpc_errors import stream_errors, unary_errors
from sparkchain.proto import api_pb2


class RecordingContext:
    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str, Any] | None = None

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any = ()) -> None:
        self.aborted = (code, details, tuple(trailing_metadata))
        raise grpc.aio.AbortError()


class Servicer:
    @unary_errors
    async def Refuse(self, request: object, context: object) -> None:
        raise SparkError(ErrorCode.UNAUTHORIZED, "not the prefix owner")

    @unary_errors
    async def Crash(self, request: object, context: object) -> None:
        raise RuntimeError("boom")

    @stream_errors
    async def CrashMidStream(self, request: object, context: object) -> AsyncIterator[int]:
        yield 1
        raise KeyError("missing")


async def test_a_spark_error_keeps_its_code_and_status() -> None:
    context = RecordingContext()
    with pytest.raises(grpc.aio.AbortError):
        await Servicer().Refuse(None, context)
    assert context.aborted == (
        grpc.StatusCode.PERMISSION_DENIED,
        "UNAUTHORIZED: not the prefix owner",
        (
            (ERROR_CODE_METADATA_KEY, "UNAUTHORIZED"),
            (
                ERROR_DETAILS_METADATA_KEY,
                api_pb2.ErrorDetails(
                    code="UNAUTHORIZED", message="not the prefix owner"
                ).SerializeToString(),
            ),
        ),
    )


async def test_an_unexpected_exception_is_internal_with_its_code() -> None:
    context = RecordingContext()
    with pytest.raises(grpc.aio.AbortError):
        await Servicer().Crash(None, context)
    assert context.aborted is not None
    code, details, metadata = context.aborted
    assert code is grpc.StatusCode.INTERNAL
    assert details == "INTERNAL: internal error: boom"
    assert metadata[0] == (ERROR_CODE_METADATA_KEY, "INTERNAL")
    assert api_pb2.ErrorDetails.FromString(dict(metadata)[ERROR_DETAILS_METADATA_KEY]).code == (
        "INTERNAL"
    )


async def test_a_stream_that_fails_after_sending_is_internal() -> None:
    context = RecordingContext()
    received = []
    with pytest.raises(grpc.aio.AbortError):
        async for item in Servicer().CrashMidStream(None, context):
            received.append(item)
    assert received == [1]
    assert context.aborted is not None and context.aborted[0] is grpc.StatusCode.INTERNAL
