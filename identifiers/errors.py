"""Every error code of sparkchain, and the one typed error that carries it.

A code is stable: scripts and other nodes rely on it. Add codes; never rename one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from sparkchain.identifiers.limits import MAX_ERROR_TEXT_CHARS


class ErrorCode(StrEnum):
    # input that does not parse
    INVALID_IDENTIFIER = "INVALID_IDENTIFIER"
    INVALID_PREFIX = "INVALID_PREFIX"
    INVALID_BID = "INVALID_BID"
    INVALID_GTIN = "INVALID_GTIN"
    INVALID_DIGITAL_LINK = "INVALID_DIGITAL_LINK"
    INVALID_OID = "INVALID_OID"
    INVALID_KEY = "INVALID_KEY"
    INVALID_VALUE = "INVALID_VALUE"
    INVALID_TX = "INVALID_TX"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    # transaction rules (DESIGN §4)
    BAD_SIGNATURE = "BAD_SIGNATURE"
    WRONG_CHAIN = "WRONG_CHAIN"
    EXPIRED = "EXPIRED"
    DUPLICATE_TX = "DUPLICATE_TX"
    TOO_LARGE = "TOO_LARGE"
    UNAUTHORIZED = "UNAUTHORIZED"
    EXISTS = "EXISTS"
    NOT_FOUND = "NOT_FOUND"
    REVOKED = "REVOKED"
    # a record's metadata does not follow the template it names at index 1001; the message
    # names the failing property path (ledger/templates.py, docs/templates.md)
    TEMPLATE_MISMATCH = "TEMPLATE_MISMATCH"
    # membership (DESIGN §12)
    NO_QUORUM = "NO_QUORUM"  # a governance tx without approvals of a quorum of validators
    TOO_MANY_REMOVED = "TOO_MANY_REMOVED"  # more than ⌊(n−1)/3⌋ validators removed at once
    DUPLICATE_VALIDATOR = "DUPLICATE_VALIDATOR"  # a name or key twice in the resulting set
    # blocks, chain and set-up
    INVALID_BLOCK = "INVALID_BLOCK"
    INVALID_CERTIFICATE = "INVALID_CERTIFICATE"
    INVALID_GENESIS = "INVALID_GENESIS"
    INVALID_CONFIG = "INVALID_CONFIG"
    INVALID_PROOF = "INVALID_PROOF"
    STORAGE_CORRUPT = "STORAGE_CORRUPT"
    # the state tree of that height is pruned on this node ([ledger] keep_heights); the
    # message names the oldest height it still proves
    HEIGHT_PRUNED = "HEIGHT_PRUNED"
    # node runtime
    ADDRESS_IN_USE = "ADDRESS_IN_USE"  # a listen address another process holds; nothing started
    MEMPOOL_FULL = "MEMPOOL_FULL"
    # a bound on what one client or all clients may hold was hit (DESIGN §11); the message
    # names the limit (identifiers/limits.py) and its number
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    UNAVAILABLE = "UNAVAILABLE"
    # a write sent to a node that takes none: an observer that forwards to no validator
    READ_ONLY = "READ_ONLY"
    TIMEOUT = "TIMEOUT"
    INTERNAL = "INTERNAL"  # a bug on the node; the message says what failed


# trailing metadata of a refused gRPC call (proto/api.proto, header comment)
ERROR_CODE_METADATA_KEY: Final = "spark-error-code"
ERROR_DETAILS_METADATA_KEY: Final = "spark-error-details-bin"


class SparkError(Exception):
    """The one error type a user sees: a stable code and a message naming the problem.

    `item_index` is the position of the item the error concerns when a request holds many
    (a RegisterBatch item), so that a program reads it from a field, not from the text.

    A message often quotes the input it refuses, which an outsider may make as long as a
    request allows: it is cut to MAX_ERROR_TEXT_CHARS here, where every error is made.
    """

    def __init__(self, code: ErrorCode, message: str, *, item_index: int | None = None) -> None:
        message = bounded_error_text(message)
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.item_index = item_index

    def __reduce__(
        self,
    ) -> tuple[type[SparkError], tuple[ErrorCode, str], dict[str, int | None]]:
        return (type(self), (self.code, self.message), {"item_index": self.item_index})


def bounded_error_text(text: str, limit: int = MAX_ERROR_TEXT_CHARS) -> str:
    """`text`, or its start with "…" and the original length when it is longer than
    `limit` characters (the result is never longer)."""
    if len(text) <= limit:
        return text
    tail = f"… ({len(text)} chars)"
    return text[: max(0, limit - len(tail))] + tail
