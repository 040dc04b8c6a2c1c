"""SparkError → gRPC status, on the server (api.proto header comment).

A SparkError ends the call with the gRPC status of its class, details "CODE: message" and
the trailing metadata ("spark-error-code", CODE) and ("spark-error-details-bin",
ErrorDetails), which holds the code, the message and the item index in fields. The client
side, status → SparkError, is cli/rpc_errors.py.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc

from sparkchain.identifiers.errors import (
    ERROR_CODE_METADATA_KEY,
    ERROR_DETAILS_METADATA_KEY,
    ErrorCode,
    SparkError,
)
from sparkchain.proto import api_pb2

log = logging.getLogger(__name__)

_STATUS_BY_CODE: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.UNAUTHORIZED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.DUPLICATE_TX: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.MEMPOOL_FULL: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.REVOKED: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorCode.STORAGE_CORRUPT: grpc.StatusCode.DATA_LOSS,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
    ErrorCode.INVALID_CONFIG: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.INVALID_GENESIS: grpc.StatusCode.FAILED_PRECONDITION,
}


def status_for(code: ErrorCode) -> grpc.StatusCode:
    """The gRPC status class of a project error code (every INVALID_* is INVALID_ARGUMENT)."""
    status = _STATUS_BY_CODE.get(code)
    if status is not None:
        return status
    # INVALID_*, BAD_SIGNATURE, WRONG_CHAIN, EXPIRED, TOO_LARGE: the request itself is wrong
    return grpc.StatusCode.INVALID_ARGUMENT


def details_for(error: SparkError) -> str:
    return f"{error.code}: {error.message}"


def error_details(error: SparkError) -> api_pb2.ErrorDetails:
    return api_pb2.ErrorDetails(
        code=str(error.code), message=error.message, item_index=error.item_index
    )


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: SparkError) -> NoReturn:
    await context.abort(
        status_for(error.code),
        details_for(error),
        trailing_metadata=(
            (ERROR_CODE_METADATA_KEY, str(error.code)),
            (ERROR_DETAILS_METADATA_KEY, error_details(error).SerializeToString()),
        ),
    )
    raise AssertionError("context.abort returned")  # pragma: no cover


_Servicer = TypeVar("_Servicer")
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


@contextlib.asynccontextmanager
async def _status_for_errors(
    context: grpc.aio.ServicerContext[Any, Any], where: str
) -> AsyncIterator[None]:
    """SparkError → its status; anything unexpected → INTERNAL, logged."""
    try:
        yield
    except SparkError as error:
        await abort(context, error)
    except (grpc.aio.AbortError, grpc.aio.UsageError, KeyboardInterrupt):
        raise
    except Exception as exc:
        log.exception("internal error in %s", where)
        await abort(context, SparkError(ErrorCode.INTERNAL, f"internal error: {exc}"))


def unary_errors(
    handler: Callable[
        [_Servicer, _Request, grpc.aio.ServicerContext[_Request, _Response]],
        Awaitable[_Response],
    ],
) -> Callable[
    [_Servicer, _Request, grpc.aio.ServicerContext[_Request, _Response]],
    Awaitable[_Response],
]:
    """Servicer method decorator: SparkError → status; anything else → INTERNAL, logged."""

    @functools.wraps(handler)
    async def wrapper(
        self: _Servicer, request: _Request, context: grpc.aio.ServicerContext[_Request, _Response]
    ) -> _Response:
        async with _status_for_errors(context, handler.__qualname__):
            return await handler(self, request, context)

    return wrapper


def stream_errors(
    handler: Callable[
        [_Servicer, _Request, grpc.aio.ServicerContext[_Request, _Response]],
        AsyncIterator[_Response],
    ],
) -> Callable[
    [_Servicer, _Request, grpc.aio.ServicerContext[_Request, _Response]],
    AsyncIterator[_Response],
]:
    """Like unary_errors for async-generator (server-streaming) servicer methods."""

    @functools.wraps(handler)
    async def wrapper(
        self: _Servicer, request: _Request, context: grpc.aio.ServicerContext[_Request, _Response]
    ) -> AsyncIterator[_Response]:
        async with _status_for_errors(context, handler.__qualname__):
            async for response in handler(self, request, context):
                yield response

    return wrapper
