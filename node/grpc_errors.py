"""SparkError → gRPC status, on the server (api.proto header comment).

A SparkError ends the call with the gRPC status of its class, details "CODE: message" and
the trailing metadata ("spark-error-code", CODE) and ("spark-error-details-bin",
ErrorDetails), which holds the code, the message and the item index in fields. The client
side, status → SparkError, is cli/rpc_errors.py.

A request message that does not decode never reaches a servicer: gRPC decodes it first and
would answer UNKNOWN, with a traceback in the log. Every server the node runs is built by
`new_server`, whose interceptor answers it INVALID_ARGUMENT, as any other SparkError, and
logs it at debug, one line per method per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import DecodeError

from sparkchain.identifiers.errors import (
    ERROR_CODE_METADATA_KEY,
    ERROR_DETAILS_METADATA_KEY,
    ErrorCode,
    SparkError,
)
from sparkchain.node.logs import RateLimitedLog
from sparkchain.proto import api_pb2

log = logging.getLogger(__name__)

_STATUS_BY_CODE: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.UNAUTHORIZED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.DUPLICATE_TX: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.MEMPOOL_FULL: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.LIMIT_EXCEEDED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.REVOKED: grpc.StatusCode.FAILED_PRECONDITION,
    # the document is judged against a template in the state, as REVOKED against a record
    ErrorCode.TEMPLATE_MISMATCH: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.NO_QUORUM: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.TOO_MANY_REMOVED: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.DUPLICATE_VALIDATOR: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorCode.STORAGE_CORRUPT: grpc.StatusCode.DATA_LOSS,
    # the request is fine, but this node no longer holds that state (another may)
    ErrorCode.HEIGHT_PRUNED: grpc.StatusCode.OUT_OF_RANGE,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
    ErrorCode.INVALID_CONFIG: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.READ_ONLY: grpc.StatusCode.FAILED_PRECONDITION,
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


async def abort_stuck_call(
    context: grpc.aio.ServicerContext[Any, Any],
    call: asyncio.Task[Any] | None,
    error: SparkError,
) -> None:
    """End a call from outside its handler's task `call`, which is stuck (a stream write to
    a client that does not read): send `error`'s status, then cancel the handler. Cancelling
    alone would leave the client waiting for a status that never comes."""
    with contextlib.suppress(grpc.aio.AbortError, grpc.aio.UsageError):
        await abort(context, error)
    if call is not None:
        call.cancel()


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
    except (grpc.aio.AbortError, grpc.aio.UsageError, MalformedRequest, KeyboardInterrupt):
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


# ---------------------------------------------------------------------------- malformed requests


def new_server(
    options: Sequence[tuple[str, Any]],
    maximum_concurrent_rpcs: int | None = None,
    outer: Sequence[grpc.aio.ServerInterceptor] = (),
) -> grpc.aio.Server:
    """A grpc.aio server whose every method (ours, health, reflection) answers a request
    that does not decode with INVALID_ARGUMENT; beyond `maximum_concurrent_rpcs` calls at
    once, grpc.aio answers RESOURCE_EXHAUSTED before it reads the request. `outer`
    interceptors (metrics) see every call as the client does, refusals included."""
    return grpc.aio.server(
        options=options,
        interceptors=[*outer, RefuseMalformedRequests()],
        maximum_concurrent_rpcs=maximum_concurrent_rpcs,
    )


class MalformedRequest(Exception):
    """Request bytes that do not decode as the method's message. A unary method gets this
    in place of its request (gRPC decodes before the handler runs); a request stream
    raises it where the handler reads."""

    def __init__(self, error: SparkError) -> None:
        super().__init__(error.message)
        self.error = error


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """An interceptor that wraps each method's handler in `wrap`, once per method: grpc
    hands over the same handler object on every call, so the wrapping is kept."""

    def __init__(self) -> None:
        # method -> (grpc's handler, ours)
        self._wrapped: dict[
            str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]
        ] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is None or known[0] is not handler:
            known = self._wrapped[method] = (handler, self.wrap(handler, method))
        return known[1]

    def wrap(
        self, method_handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        raise NotImplementedError


class RefuseMalformedRequests(WrappingInterceptor):
    def __init__(self) -> None:
        super().__init__()
        self._lines = RateLimitedLog(log)

    def wrap(
        self, method_handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """`method_handler` with its request decoder and its behaviour wrapped; an async
        behaviour only (all of ours are)."""
        handler: Any = method_handler  # grpc builds them as named tuples (grpc._utilities)
        kind = (
            ("stream" if handler.request_streaming else "unary")
            + "_"
            + ("stream" if handler.response_streaming else "unary")
        )
        behaviour = getattr(handler, kind)
        decode = handler.request_deserializer
        if decode is None or not (
            inspect.iscoroutinefunction(behaviour) or inspect.isasyncgenfunction(behaviour)
        ):
            return method_handler

        def checked_decode(raw: bytes) -> object:
            try:
                return decode(raw)
            except DecodeError as exc:
                malformed = MalformedRequest(
                    SparkError(
                        ErrorCode.INVALID_ARGUMENT, f"{method}: request does not decode: {exc}"
                    )
                )
                if handler.request_streaming:
                    raise malformed from None
                return malformed

        async def refuse(
            context: grpc.aio.ServicerContext[Any, Any], malformed: MalformedRequest
        ) -> NoReturn:
            self._lines.log(
                logging.DEBUG,
                method,
                "malformed_request",
                {"method": method, "peer": context.peer(), "error": malformed.error.message},
            )
            await abort(context, malformed.error)

        if inspect.isasyncgenfunction(behaviour):

            async def guarded_stream(request: Any, context: Any) -> AsyncIterator[Any]:
                if isinstance(request, MalformedRequest):
                    await refuse(context, request)
                try:
                    async for response in behaviour(request, context):
                        yield response
                except MalformedRequest as malformed:
                    await refuse(context, malformed)

            guarded: Callable[..., Any] = guarded_stream
        else:

            async def guarded_call(request: Any, context: Any) -> Any:
                if isinstance(request, MalformedRequest):
                    await refuse(context, request)
                try:
                    return await behaviour(request, context)
                except MalformedRequest as malformed:
                    await refuse(context, malformed)

            guarded = guarded_call
        guarded_handler: grpc.RpcMethodHandler[Any, Any] = handler._replace(
            request_deserializer=checked_decode, **{kind: guarded}
        )
        return guarded_handler
