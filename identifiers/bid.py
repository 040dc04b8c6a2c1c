"""Spark-compatible BID account identifiers (DESIGN §2).

`did:bid:` [acsn `:`] `ef` Base58(SHA-256(raw public key)[10:32]), in Spark's Base58
alphabet, which swaps the case of B/b and U/u against Bitcoin's. No checksum exists, so a
BID is valid when its prefix, sub-chain code and `ef` letters are right and the rest
decodes to exactly 22 bytes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sparkchain.identifiers.errors import ErrorCode, SparkError

SPARK_BASE58_ALPHABET = "123456789AbCDEFGHJKLMNPQRSTuVWXYZaBcdefghijkmnopqrstUvwxyz"
_DIGIT = {ch: i for i, ch in enumerate(SPARK_BASE58_ALPHABET)}
BID_PREFIX = "did:bid:"
BID_TYPE = "ef"
BID_HASH_BYTES = 22
# Base58 of 22 bytes never needs more characters (58**31 > 256**22); checking this before
# decoding keeps a huge owner field from costing quadratic time in Base58 decoding.
BID_BODY_MAX_CHARS = 31
_ACSN = re.compile(r"[a-z0-9]{4}")
# Spark's SDKs print an Ed25519 public key as hex of b0 65 66 + the raw key
SPARK_ENCODED_PUBKEY_PREFIX = bytes([0xB0, 0x65, 0x66])


def base58_encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(SPARK_BASE58_ALPHABET[rem])
    leading = len(data) - len(data.lstrip(b"\x00"))
    return SPARK_BASE58_ALPHABET[0] * leading + "".join(reversed(out))


def base58_decode(text: str) -> bytes:
    number = 0
    for pos, ch in enumerate(text):
        digit = _DIGIT.get(ch)
        if digit is None:
            raise SparkError(
                ErrorCode.INVALID_BID,
                f"character {ch!r} at position {pos} is not in the Spark Base58 alphabet",
            )
        number = number * 58 + digit
    leading = len(text) - len(text.lstrip(SPARK_BASE58_ALPHABET[0]))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * leading + body


def _check_acsn(acsn: str) -> None:
    if not _ACSN.fullmatch(acsn):
        raise SparkError(
            ErrorCode.INVALID_BID,
            f"sub-chain code {acsn!r} must be 4 lowercase letters or digits",
        )


def bid_from_public_key(public_key: bytes, acsn: str | None = None) -> str:
    if len(public_key) != 32:
        raise SparkError(
            ErrorCode.INVALID_KEY, f"Ed25519 public key must be 32 bytes, got {len(public_key)}"
        )
    digest = hashlib.sha256(public_key).digest()[32 - BID_HASH_BYTES :]
    middle = ""
    if acsn is not None:
        _check_acsn(acsn)
        middle = acsn + ":"
    return BID_PREFIX + middle + BID_TYPE + base58_encode(digest)


@dataclass(frozen=True, slots=True)
class Bid:
    text: str
    acsn: str | None
    hash_bytes: bytes


def parse_bid(text: str) -> Bid:
    if not isinstance(text, str):
        raise SparkError(ErrorCode.INVALID_BID, "BID must be a string")
    if not text.startswith(BID_PREFIX):
        raise SparkError(ErrorCode.INVALID_BID, f"BID must start with {BID_PREFIX!r}")
    rest = text[len(BID_PREFIX) :]
    acsn = None
    if ":" in rest:
        acsn, rest = rest.split(":", 1)
        _check_acsn(acsn)
    if not rest.startswith(BID_TYPE):
        raise SparkError(
            ErrorCode.INVALID_BID,
            f"BID key type must be {BID_TYPE!r} (Ed25519, Base58), got {rest[:2]!r}",
        )
    encoded = rest[len(BID_TYPE) :]
    if len(encoded) > BID_BODY_MAX_CHARS:
        raise SparkError(
            ErrorCode.INVALID_BID,
            f"BID body is {len(encoded)} characters, at most {BID_BODY_MAX_CHARS}",
        )
    raw = base58_decode(encoded)
    if len(raw) != BID_HASH_BYTES:
        raise SparkError(
            ErrorCode.INVALID_BID,
            f"BID body decodes to {len(raw)} bytes, expected {BID_HASH_BYTES}",
        )
    if base58_encode(raw) != encoded:
        raise SparkError(ErrorCode.INVALID_BID, "BID body is not in canonical Base58 form")
    return Bid(text, acsn, raw)


def parse_public_key_text(text: str) -> bytes:
    """A public key given as 64 hex characters (raw) or Spark's encoded hex (b06566 + raw)."""
    cleaned = text.strip().lower()
    try:
        raw = bytes.fromhex(cleaned)
    except ValueError as exc:
        raise SparkError(ErrorCode.INVALID_KEY, f"public key is not hex: {text!r}") from exc
    if len(raw) == 32:
        return raw
    if len(raw) == 35 and raw.startswith(SPARK_ENCODED_PUBKEY_PREFIX):
        return raw[3:]
    raise SparkError(
        ErrorCode.INVALID_KEY,
        f"public key must be 64 hex characters or 70 starting with b06566, got {len(cleaned)}",
    )
