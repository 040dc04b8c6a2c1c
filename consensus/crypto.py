"""Pluggable signatures: the core signs and verifies through these two small protocols.

The node uses Ed25519 (`Ed25519Signer`, `Ed25519Verifier`). The simulator can plug in a cheap
deterministic scheme to run thousands of scenarios; the core's logic is the same either way.
"""

from __future__ import annotations

from typing import Protocol

from sparkchain.identifiers.keys import SigningKey, verify


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
    """Ed25519 verification through `identifiers.keys.verify`, the one verifier every node
    uses (libsodium: the fastest measured here, and identical judgement of edge cases on
    every node). Nothing is cached, so nothing cached can make a bad signature pass."""

    __slots__ = ()

    def verify(self, public_key: bytes, tag: bytes, message: bytes, signature: bytes) -> bool:
        return verify(public_key, tag, message, signature)
