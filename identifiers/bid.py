"""Spark-compatible BID account identifiers (DESIGN §2).

`did:bid:` [acsn `:`] `ef` Base58(SHA-256(raw public key)[10:32]) for an Ed25519 key, and
`did:bid:` [acsn `:`] `zf` Base58(SM3(04 || X || Y)[10:32]) for an SM2 key (issue 16), in
Spark's Base58 alphabet, which swaps the case of B/b and U/u against Bitcoin's. No checksum
exists, so a BID is valid when its prefix, sub-chain code and type letters are right and the
rest decodes to exactly 22 bytes. The key type follows from the public key's form: 32 bytes
is Ed25519, 65 bytes starting 04 is an SM2 point.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import sm3

SPARK_BASE58_ALPHABET = "123456789AbCDEFGHJKLMNPQRSTuVWXYZaBcdefghijkmnopqrstUvwxyz"
_DIGIT = {ch: i for i, ch in enumerate(SPARK_BASE58_ALPHABET)}
BID_PREFIX = "did:bid:"
BID_TYPE = "ef"  # Ed25519 key
SM2_BID_TYPE = "zf"  # SM2 key
BID_TYPES = (BID_TYPE, SM2_BID_TYPE)
BID_HASH_BYTES = 22
# Base58 of 22 bytes never needs more characters (58**31 > 256**22); checking this before
# decoding keeps a huge owner field from costing quadratic time in Base58 decoding.
BID_BODY_MAX_CHARS = 31
_ACSN = re.compile(r"[a-z0-9]{4}")
# Spark's SDKs print an Ed25519 public key as hex of b0 65 66 + the raw key
SPARK_ENCODED_PUBKEY_PREFIX = bytes([0xB0, 0x65, 0x66])
# ... and an SM2 public key as hex of b0 7a 66 (7a 66 = "zf") + 04 || X || Y
SPARK_ENCODED_SM2_PUBKEY_PREFIX = bytes([0xB0, 0x7A, 0x66])
_SM2_KEY_BYTES = 65


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
    """The BID of a raw Ed25519 key (32 bytes) or of an SM2 point (65 bytes, 04 || X || Y)."""
    if len(public_key) == 32:
        key_type, digest = BID_TYPE, hashlib.sha256(public_key).digest()
    elif len(public_key) == _SM2_KEY_BYTES and public_key[0] == 0x04:
        key_type, digest = SM2_BID_TYPE, sm3(public_key)
    else:
        raise SparkError(
            ErrorCode.INVALID_KEY,
            "public key must be 32 bytes (Ed25519) or 65 bytes starting with 04 (SM2), "
            f"got {len(public_key)}",
        )
    middle = ""
    if acsn is not None:
        _check_acsn(acsn)
        middle = acsn + ":"
    return BID_PREFIX + middle + key_type + base58_encode(digest[32 - BID_HASH_BYTES :])


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
    if rest[:2] not in BID_TYPES:
        raise SparkError(
            ErrorCode.INVALID_BID,
            f"BID key type must be {BID_TYPE!r} (Ed25519) or {SM2_BID_TYPE!r} (SM2), "
            f"got {rest[:2]!r}",
        )
    encoded = rest[2:]
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
    """A public key as hex: raw Ed25519 (64 characters) or SM2 (130, 04 || X || Y), or
    Spark's encoded forms (b06566 + Ed25519 key, b07a66 + SM2 point)."""
    cleaned = text.strip().lower()
    try:
        raw = bytes.fromhex(cleaned)
    except ValueError as exc:
        raise SparkError(ErrorCode.INVALID_KEY, f"public key is not hex: {text!r}") from exc
    if len(raw) == 32:
        return raw
    if len(raw) == 35 and raw.startswith(SPARK_ENCODED_PUBKEY_PREFIX):
        return raw[3:]
    if len(raw) == _SM2_KEY_BYTES and raw[0] == 0x04:
        return raw
    sm2_prefix = SPARK_ENCODED_SM2_PUBKEY_PREFIX + b"\x04"
    if len(raw) == 3 + _SM2_KEY_BYTES and raw.startswith(sm2_prefix):
        return raw[3:]
    raise SparkError(
        ErrorCode.INVALID_KEY,
        "public key must be 64 hex characters (Ed25519) or 130 starting with 04 (SM2), or "
        f"Spark's 136 starting with b07a6604 or 70 starting with b06566, got {len(cleaned)}",
    )
