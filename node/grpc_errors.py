"""SparkError ↔ gRPC status, both directions (api.proto header comment).

Server side: a SparkError ends the call with the gRPC status of its class, details
"CODE: message" and the trailing metadata ("spark-error-code", CODE). Client side: any
grpc.RpcError becomes a SparkError carrying the same code, so a CLI user sees the code the
ledger chose, and an unreachable node becomes UNAVAILABLE naming the address.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc

from sparkchain.identifiers.errors import ErrorCode, SparkError

ERROR_CODE_METADATA_KEY = "spark-error-code"

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

# Used only when a status carries no project code (a proxy, a crash, a foreign server).
_CODE_BY_STATUS: dict[grpc.StatusCode, ErrorCode] = {
    grpc.StatusCode.NOT_FOUND: ErrorCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED: ErrorCode.UNAUTHORIZED,
    grpc.StatusCode.ALREADY_EXISTS: ErrorCode.EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorCode.MEMPOOL_FULL,
    grpc.StatusCode.FAILED_PRECONDITION: ErrorCode.REVOKED,
    grpc.StatusCode.UNAVAILABLE: ErrorCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: ErrorCode.TIMEOUT,
    grpc.StatusCode.INVALID_ARGUMENT: ErrorCode.INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE: ErrorCode.TOO_LARGE,
    grpc.StatusCode.INTERNAL: ErrorCode.INTERNAL,
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


async def abort(context: grpc.aio.ServicerContext, error: SparkError) -> NoReturn:
    await context.abort(
        status_for(error.code),
        details_for(error),
        trailing_metadata=((ERROR_CODE_METADATA_KEY, str(error.code)),),
    )
    raise AssertionError("context.abort returned")  # pragma: no cover


_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[Any]])
_StreamHandler = TypeVar("_StreamHandler", bound=Callable[..., AsyncIterator[Any]])


@contextlib.asynccontextmanager
async def _status_for_errors(context: grpc.aio.ServicerContext, where: str) -> AsyncIterator[None]:
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


def unary_errors(handler: _Handler) -> _Handler:
    """Servicer method decorator: SparkError → status; anything else → INTERNAL, logged."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with _status_for_errors(context, handler.__qualname__):
            return await handler(self, request, context)

    return wrapper  # type: ignore[return-value]


def stream_errors(handler: _StreamHandler) -> _StreamHandler:
    """Like unary_errors for async-generator (server-streaming) servicer methods."""

    @functools.wraps(handler)
    async def wrapper(
        self: Any, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        async with _status_for_errors(context, handler.__qualname__):
            async for response in handler(self, request, context):
                yield response

    return wrapper  # type: ignore[return-value]


# ---- client side ----


def _metadata_code(error: grpc.RpcError) -> str | None:
    getter = getattr(error, "trailing_metadata", None)
    if getter is None:
        return None
    try:
        metadata = getter()
    except Exception:  # a call that never reached a server has none
        return None
    for key, value in metadata or ():
        if key == ERROR_CODE_METADATA_KEY:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def _status_and_details(error: grpc.RpcError) -> tuple[grpc.StatusCode | None, str]:
    code_getter = getattr(error, "code", None)
    details_getter = getattr(error, "details", None)
    status = code_getter() if callable(code_getter) else None
    details = (details_getter() if callable(details_getter) else None) or ""
    return status, details


def from_rpc_error(error: grpc.RpcError, target: str) -> SparkError:
    """The SparkError a failed call stands for; `target` is the node's host:port."""
    status, details = _status_and_details(error)
    code_text = _metadata_code(error)
    message = details
    if code_text is None and ": " in details:
        head, rest = details.split(": ", 1)
        if head in ErrorCode.__members__:
            code_text, message = head, rest
    elif code_text is not None and details.startswith(f"{code_text}: "):
        message = details[len(code_text) + 2 :]
    if code_text is not None and code_text in ErrorCode.__members__:
        return SparkError(ErrorCode(code_text), message)
    if status is grpc.StatusCode.UNAVAILABLE:
        reason = _unreachable_reason(details)
        return SparkError(
            ErrorCode.UNAVAILABLE,
            f"cannot reach node at {target} ({reason}); is it running? "
            "(set --node HOST:PORT or $SPARK_NODE)",
        )
    if status is grpc.StatusCode.DEADLINE_EXCEEDED:
        return SparkError(ErrorCode.TIMEOUT, f"node at {target} did not answer in time")
    code = _CODE_BY_STATUS.get(status) if status is not None else None
    status_name = status.name if status is not None else "UNKNOWN"
    if code is None:
        return SparkError(
            ErrorCode.UNAVAILABLE, f"node at {target} failed: {status_name}: {details}"
        )
    return SparkError(code, f"{status_name}: {details}")


def _unreachable_reason(details: str) -> str:
    """gRPC's connection details, cut to what a user can act on."""
    text = " ".join(details.split())
    for marker, reason in (
        ("Connection refused", "connection refused"),
        ("DNS resolution failed", "host name not found"),
        ("lookup", "host name not found"),
        ("Deadline Exceeded", "no answer in time"),
        ("Network is unreachable", "network unreachable"),
    ):
        if marker in text:
            return reason
    return text[:160] or "no answer"
