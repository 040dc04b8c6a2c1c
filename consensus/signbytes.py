"""The one canonical encoding of what a vote or a proposal signs.

    chain_id_len:u8 | chain_id | kind:u8 | height:u64 | round:u32 | [valid_round:i32]
    | hash_len:u8 | hash

all big-endian, where kind is 1 (prevote), 2 (precommit) or 3 (proposal), valid_round is present
only in a proposal and a nil vote has hash_len 0. The signer prepends the domain tag
(VOTE_TAG or PROPOSAL_TAG), so a vote signature can never be replayed as anything else.
"""

from __future__ import annotations

import struct
from typing import Final

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_CHAIN_ID_BYTES

PROPOSAL_KIND: Final = 3
MAX_BLOCK_HASH_BYTES: Final = 255  # a u8 length prefix
MAX_ROUND: Final = 2**32 - 1
MAX_HEIGHT: Final = 2**64 - 1

_VOTE: Final = struct.Struct(">BQIB")
_PROPOSAL: Final = struct.Struct(">BQIiB")


def chain_prefix(chain_id: str) -> bytes:
    """The length-prefixed chain id that starts every sign-bytes string."""
    raw = chain_id.encode()
    if not raw or len(raw) > MAX_CHAIN_ID_BYTES:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            f"chain id must be 1..{MAX_CHAIN_ID_BYTES} bytes, got {len(raw)}",
        )
    return bytes([len(raw)]) + raw


def encodable(height: int, round: int, block_hash: bytes) -> bool:
    """Whether the sign bytes can carry this height, round and block hash."""
    return (
        0 <= height <= MAX_HEIGHT
        and 0 <= round <= MAX_ROUND
        and len(block_hash) <= MAX_BLOCK_HASH_BYTES
    )


def vote_sign_bytes(prefix: bytes, kind: int, height: int, round: int, block_hash: bytes) -> bytes:
    """Sign bytes of a vote; `prefix` is `chain_prefix(chain_id)` (computed once per chain).

    Raises struct.error for a height, round or hash outside the encodable range; callers
    check those bounds first.
    """
    return prefix + _VOTE.pack(kind, height, round, len(block_hash)) + block_hash


def proposal_sign_bytes(
    prefix: bytes, height: int, round: int, valid_round: int, block_hash: bytes
) -> bytes:
    return (
        prefix
        + _PROPOSAL.pack(PROPOSAL_KIND, height, round, valid_round, len(block_hash))
        + block_hash
    )
