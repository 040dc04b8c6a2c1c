"""Pluggable signatures: the core signs and verifies through these two small protocols.

The node uses Ed25519 (`Ed25519Signer`, `Ed25519Verifier`). The simulator can plug in a cheap
deterministic scheme to run thousands of scenarios; the core's logic is the same either way.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from identifiers.keys import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, SigningKey
from identifiers.tags import SIGNING_TAGS


class Signer(Protocol):
    @property
    def public_key(self) -> bytes: ...

    def sign(self, tag: bytes, message: bytes) -> bytes: ...


class Verifier(Protocol):
    def verify(self, public_key: bytes, tag: bytes, message: bytes, signature: bytes) -> bool:
        """True when `signature` is `public_key`'s signature over `tag || message`."""
        ...


class Ed25519Signer:
    """A validator's Ed25519 key as a consensus Signer."""

    __slots__ = ("_key",)

    def __init__(self, key: SigningKey) -> None:
        self._key = key

    @property
    def public_key(self) -> bytes:
        return self._key.public_key

    def sign(self, tag: bytes, message: bytes) -> bytes:
        return self._key.sign(tag, message)


class Ed25519Verifier:
    """Ed25519 verification with the parsed public keys kept (parsing costs ~2 µs a key).

    Only parsed keys are kept, never verification results, so nothing cached can make a bad
    signature pass. The cache is bounded: the core only asks about validator keys.
    """

    MAX_KEYS = 1024

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[bytes, Ed25519PublicKey] = {}

    def verify(self, public_key: bytes, tag: bytes, message: bytes, signature: bytes) -> bool:
        if tag not in SIGNING_TAGS or len(signature) != SIGNATURE_BYTES:
            return False
        key = self._keys.get(public_key)
        if key is None:
            if len(public_key) != PUBLIC_KEY_BYTES:
                return False
            try:
                key = Ed25519PublicKey.from_public_bytes(public_key)
            except ValueError:
                return False
            if len(self._keys) >= self.MAX_KEYS:
                self._keys.clear()
            self._keys[public_key] = key
        try:
            key.verify(signature, tag + message)
        except InvalidSignature:
            return False
        return True
