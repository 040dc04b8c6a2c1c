"""Ed25519 account and validator keys: generation, PEM encoding, tagged signing.

Pure: bytes in, bytes out. Reading and writing key files (mode 0600) is `node.keystore`.
Verification uses libsodium through PyNaCl: measured here it verifies 1.7-2x faster than
`cryptography` (OpenSSL) and both release the GIL (bench/keys_bench.py). Verification is the
throughput ceiling of the chain, and every node must use the same verifier so that edge-case
signatures are judged alike. `cryptography` keeps what PyNaCl lacks: PEM key files with
optional passphrase encryption, and signing.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from sparkchain.identifiers.bid import SPARK_BASE58_ALPHABET, base58_decode, base58_encode
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tags import SIGNING_TAGS

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32
# Spark's SDKs print a private key as Base58 (Spark's alphabet) of these 3 bytes, which
# make the text start with "priSPK", then the key type 'e' (Ed25519) and the encoding 'f'
# (Base58), then the 32-byte seed. There is no checksum: the length and the prefix are all
# that can be checked.
SPARK_PRIVATE_KEY_PREFIX = bytes([0x18, 0x9E, 0x99]) + b"ef"
SPARK_PRIVATE_KEY_TEXT_PREFIX = "priSPK"
SPARK_PRIVATE_KEY_BYTES = len(SPARK_PRIVATE_KEY_PREFIX) + SEED_BYTES
# with that prefix every seed prints as exactly 50 characters (priSPKd… to priSPKv…)
SPARK_PRIVATE_KEY_CHARS = 50


def _check_tag(tag: bytes) -> None:
    if tag not in SIGNING_TAGS:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, f"unknown signing tag {tag!r}")


def public_key_from_bytes(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != PUBLIC_KEY_BYTES:
        raise SparkError(
            ErrorCode.INVALID_KEY,
            f"public key must be {PUBLIC_KEY_BYTES} bytes, got {len(raw)}",
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def verify(public_key: bytes, tag: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is `public_key`'s signature over `tag || message`."""
    _check_tag(tag)
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + tag + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private key with its raw public key."""

    private_key: Ed25519PrivateKey
    public_key: bytes

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.from_private_key(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> SigningKey:
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(private_key, raw)

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """A key from a 32-byte seed (deterministic keys for tests and simulations)."""
        if len(seed) != 32:
            raise SparkError(ErrorCode.INVALID_KEY, f"seed must be 32 bytes, got {len(seed)}")
        return cls.from_private_key(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, pem: bytes, passphrase: bytes | None = None) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase)
        except TypeError as exc:
            # cryptography raises TypeError for a missing or unexpected passphrase
            raise SparkError(ErrorCode.INVALID_KEY, f"key file passphrase: {exc}") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise SparkError(
                ErrorCode.INVALID_KEY,
                "not a PEM Ed25519 private key, or wrong passphrase",
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SparkError(ErrorCode.INVALID_KEY, "PEM key is not an Ed25519 private key")
        return cls.from_private_key(key)

    @classmethod
    def from_spark_private_key(cls, text: str) -> SigningKey:
        """A key from the `priSPK…` text Spark's SDKs print; INVALID_KEY saying what is wrong."""
        return cls.from_seed(parse_spark_private_key(text))

    def seed(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def to_spark_private_key(self) -> str:
        """The `priSPK…` text of this key, as Spark's SDKs print it."""
        return base58_encode(SPARK_PRIVATE_KEY_PREFIX + self.seed())

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def sign(self, tag: bytes, message: bytes) -> bytes:
        _check_tag(tag)
        return self.private_key.sign(tag + message)


def parse_spark_private_key(text: str) -> bytes:
    """The 32-byte Ed25519 seed in a Spark `priSPK…` private key text."""
    if not isinstance(text, str):
        raise SparkError(ErrorCode.INVALID_KEY, "Spark private key must be text")
    cleaned = text.strip()
    # "pri" only: other key types print with other letters after it, and are named below
    if not cleaned.startswith(SPARK_PRIVATE_KEY_TEXT_PREFIX[:3]):
        raise SparkError(
            ErrorCode.INVALID_KEY,
            f"a Spark private key starts with {SPARK_PRIVATE_KEY_TEXT_PREFIX!r}, "
            f"got {cleaned[:6]!r}",
        )
    if len(cleaned) != SPARK_PRIVATE_KEY_CHARS:
        raise SparkError(
            ErrorCode.INVALID_KEY,
            f"Spark private key is {len(cleaned)} characters, expected {SPARK_PRIVATE_KEY_CHARS}",
        )
    for pos, char in enumerate(cleaned):
        if char not in SPARK_BASE58_ALPHABET:
            raise SparkError(
                ErrorCode.INVALID_KEY,
                f"Spark private key: character {char!r} at position {pos} is not in Spark's "
                "Base58 alphabet",
            )
    raw = base58_decode(cleaned)
    if len(raw) != SPARK_PRIVATE_KEY_BYTES:
        raise SparkError(
            ErrorCode.INVALID_KEY,
            f"Spark private key decodes to {len(raw)} bytes, expected "
            f"{SPARK_PRIVATE_KEY_BYTES} (5-byte prefix and a 32-byte Ed25519 seed)",
        )
    prefix = raw[: len(SPARK_PRIVATE_KEY_PREFIX)]
    if prefix[:3] != SPARK_PRIVATE_KEY_PREFIX[:3]:
        raise SparkError(
            ErrorCode.INVALID_KEY,
            f"Spark private key prefix is {prefix[:3].hex()}, expected "
            f"{SPARK_PRIVATE_KEY_PREFIX[:3].hex()}",
        )
    if prefix[3:] != SPARK_PRIVATE_KEY_PREFIX[3:]:
        raise SparkError(
            ErrorCode.INVALID_KEY,
            f"Spark private key type is {prefix[3:]!r}, expected {SPARK_PRIVATE_KEY_PREFIX[3:]!r}"
            " (e: Ed25519, f: Base58; other key types are not supported)",
        )
    return raw[len(SPARK_PRIVATE_KEY_PREFIX) :]
