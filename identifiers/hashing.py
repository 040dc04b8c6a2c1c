"""The chain's hash function, chosen once at genesis (`"hash"` in genesis.json, issue 16).

SHA-256 is the default and every chain made before the choice existed uses it. SM3 (GB/T
32905-2016, China's national hash standard) is the alternative for chains that must use
national cryptography: it gives 32-byte digests too, so every size in the protocol stays.
Nothing reads a global switch: whoever hashes for a chain is handed its `HashFunction`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from enum import StrEnum

from cryptography.hazmat.primitives import hashes

from sparkchain.identifiers.errors import ErrorCode, SparkError

HashFunction = Callable[[bytes], bytes]
DIGEST_BYTES = 32


class HashAlgorithm(StrEnum):
    """The names genesis.json and `--hash` accept."""

    SHA256 = "sha256"
    SM3 = "sm3"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


_FUNCTIONS: dict[HashAlgorithm, HashFunction] = {
    HashAlgorithm.SHA256: sha256,
    HashAlgorithm.SM3: sm3,
}


def hash_function(algorithm: HashAlgorithm) -> HashFunction:
    return _FUNCTIONS[algorithm]


def parse_hash_algorithm(name: str) -> HashAlgorithm:
    """The algorithm named `name`, or INVALID_ARGUMENT listing the choices."""
    try:
        return HashAlgorithm(name)
    except ValueError:
        choices = ", ".join(a.value for a in HashAlgorithm)
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT, f"hash {name!r} is not one of {choices}"
        ) from None
