"""gRPC status → SparkError, on the client (the server side is node/grpc_errors.py).

Any grpc.RpcError becomes a SparkError carrying the code the node chose (from the
"spark-error-details-bin" trailing metadata, else "spark-error-code", else the "CODE: "
head of the details), so a CLI user sees the ledger's code and a program reads the item
index from a field. An unreachable node becomes UNAVAILABLE naming the address.
"""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError

from sparkchain.identifiers.errors import (
    ERROR_CODE_METADATA_KEY,
    ERROR_DETAILS_METADATA_KEY,
    ErrorCode,
    SparkError,
)
from sparkchain.proto import api_pb2

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


def from_rpc_error(error: grpc.RpcError, target: str) -> SparkError:
    """The SparkError a failed call stands for; `target` is the node's host:port."""
    details_message = _metadata_details(error)
    if details_message is not None and details_message.code in ErrorCode.__members__:
        item_index = details_message.item_index if details_message.HasField("item_index") else None
        return SparkError(
            ErrorCode(details_message.code), details_message.message, item_index=item_index
        )
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
            f"cannot reach node at {target} ({reason}); {_unreachable_hint(details)}",
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


def _trailing_metadata(error: grpc.RpcError) -> list[tuple[str, str | bytes]]:
    getter = getattr(error, "trailing_metadata", None)
    if getter is None:
        return []
    try:
        metadata = getter()
    except Exception:  # a call that never reached a server has none
        return []
    return list(metadata or ())


def _metadata_details(error: grpc.RpcError) -> api_pb2.ErrorDetails | None:
    for key, value in _trailing_metadata(error):
        if key == ERROR_DETAILS_METADATA_KEY and isinstance(value, bytes):
            try:
                return api_pb2.ErrorDetails.FromString(value)
            except DecodeError:
                return None  # fall back to the code and the details text
    return None


def _metadata_code(error: grpc.RpcError) -> str | None:
    for key, value in _trailing_metadata(error):
        if key == ERROR_CODE_METADATA_KEY:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def _status_and_details(error: grpc.RpcError) -> tuple[grpc.StatusCode | None, str]:
    code_getter = getattr(error, "code", None)
    details_getter = getattr(error, "details", None)
    status = code_getter() if callable(code_getter) else None
    details = (details_getter() if callable(details_getter) else None) or ""
    return status, details


_TLS_FAILURES = ("handshake failed", "CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER")


def _unreachable_hint(details: str) -> str:
    """What to try: a node that closes the connection at once may serve TLS to a
    plaintext client; a failed TLS handshake wants another --tls-ca."""
    if any(marker in details for marker in _TLS_FAILURES):
        return (
            "does --tls-ca (or $SPARK_TLS_CA) hold the CA that issued the node's certificate, "
            "and does the node serve TLS?"
        )
    if "Socket closed" in details:
        return "is it running? if it serves TLS, pass --tls-ca FILE or set $SPARK_TLS_CA"
    return "is it running? (set --node HOST:PORT or $SPARK_NODE)"


def _unreachable_reason(details: str) -> str:
    """gRPC's connection details, cut to what a user can act on."""
    text = " ".join(details.split())
    for marker, reason in (
        ("Connection refused", "connection refused"),
        ("DNS resolution failed", "host name not found"),
        ("lookup", "host name not found"),
        ("Deadline Exceeded", "no answer in time"),
        ("Network is unreachable", "network unreachable"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS: the node's certificate is not from the given CA"),
        ("handshake failed", "TLS handshake failed"),
        ("Socket closed", "the node closed the connection"),
    ):
        if marker in text:
            return reason
    return text[:160] or "no answer"
