"""The simulated application: a hash chain of small values.

A value names its height and the state root it builds on, so validity covers hash-chain
linkage: a value is valid at height h only on top of the validator's own chain at h-1.
"""

from __future__ import annotations

import hashlib

from sparkchain.consensus.messages import CommitCertificate

GENESIS_ROOT = hashlib.sha256(b"sim-genesis").digest()


def value_hash(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def next_root(root: bytes, value: bytes) -> bytes:
    return hashlib.sha256(root + value_hash(value)).digest()


def make_value(height: int, prev_root: bytes, author: int, round: int, valid: bool) -> bytes:
    kind = b"block" if valid else b"invalid"
    return b"%s|%d|%s|n%d|r%d" % (kind, height, prev_root.hex()[:16].encode(), author, round)


def is_valid_value(height: int, value: bytes, prev_root: bytes) -> bool:
    parts = value.split(b"|")
    return (
        len(parts) >= 5
        and parts[0] == b"block"
        and parts[1] == b"%d" % height
        and parts[2] == prev_root.hex()[:16].encode()
    )


class Chain:
    """A node's committed values and state roots (durable: survives a crash)."""

    __slots__ = ("certificates", "roots", "values")

    def __init__(self) -> None:
        self.values: list[bytes] = []
        self.roots: list[bytes] = [GENESIS_ROOT]  # roots[h]: after height h
        self.certificates: list[CommitCertificate] = []

    @property
    def height(self) -> int:
        return len(self.values)

    def append(self, value: bytes, certificate: CommitCertificate) -> None:
        self.values.append(value)
        self.roots.append(next_root(self.roots[-1], value))
        self.certificates.append(certificate)


class ChainApp:
    """The Application a simulated validator gives its core."""

    __slots__ = ("author", "chain", "invalid")

    def __init__(self, chain: Chain, author: int, invalid: bool = False) -> None:
        self.chain = chain
        self.author = author
        self.invalid = invalid  # the invalid-proposer strategy

    def propose(self, height: int, round: int) -> bytes:
        return make_value(
            height, self.chain.roots[height - 1], self.author, round, not self.invalid
        )

    def validate(self, height: int, value: bytes) -> bool:
        if height - 1 >= len(self.chain.roots):
            return False
        return is_valid_value(height, value, self.chain.roots[height - 1])

    def value_hash(self, value: bytes) -> bytes:
        return value_hash(value)
