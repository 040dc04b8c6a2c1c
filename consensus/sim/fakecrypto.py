"""A cheap deterministic signature scheme for the simulator only.

A "signature" is a keyed BLAKE2b of the message under the public key, so anyone can forge
one: that is fine inside the simulator, whose byzantine strategies sign only with their own
keys, and it lets thousands of scenarios run in seconds. A bad or foreign signature still
fails to verify, so the core's checks are exercised the same way as with Ed25519.
"""

from __future__ import annotations

import hashlib

FAKE_SIGNATURE_BYTES = 16


def fake_public_key(index: int) -> bytes:
    return hashlib.sha256(b"sim-validator-%d" % index).digest()


class FakeSigner:
    __slots__ = ("_public_key",)

    def __init__(self, public_key: bytes) -> None:
        self._public_key = public_key

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def sign(self, tag: bytes, message: bytes) -> bytes:
        return hashlib.blake2b(
            tag + message, key=self._public_key, digest_size=FAKE_SIGNATURE_BYTES
        ).digest()


class FakeVerifier:
    __slots__ = ()

    def verify(self, public_key: bytes, tag: bytes, message: bytes, signature: bytes) -> bool:
        expected = hashlib.blake2b(
            tag + message, key=public_key, digest_size=FAKE_SIGNATURE_BYTES
        ).digest()
        return signature == expected
