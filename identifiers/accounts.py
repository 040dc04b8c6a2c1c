"""Account keys of either algorithm a tx body may name (issue 16): Ed25519 (the default) and
SM2. Validators keep Ed25519 keys; only a tx's signer may be SM2.

The algorithm is a field of the body beside the signer's key (`TxBody.signer_algorithm`),
so what a signature means is part of what was signed and of the tx id.
"""

from __future__ import annotations

from typing import Protocol

from sparkchain.identifiers import keys, sm2
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.proto import types_pb2 as pb

ALGORITHM_NAMES = {pb.ED25519: "ed25519", pb.SM2: "sm2"}
_BY_NAME = {name: algorithm for algorithm, name in ALGORITHM_NAMES.items()}
PUBLIC_KEY_BYTES = {pb.ED25519: keys.PUBLIC_KEY_BYTES, pb.SM2: sm2.SM2_PUBLIC_KEY_BYTES}
SIGNATURE_BYTES = 64  # Ed25519's R || S and SM2's r || s alike


class AccountKey(Protocol):
    """What signing a tx needs of a key, whatever its algorithm."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, tag: bytes, message: bytes) -> bytes: ...

    def to_pem(self, passphrase: bytes | None = None) -> bytes: ...


def algorithm_of(key: AccountKey) -> pb.KeyAlgorithm.ValueType:
    return pb.SM2 if isinstance(key, sm2.Sm2SigningKey) else pb.ED25519


def parse_algorithm(name: str) -> pb.KeyAlgorithm.ValueType:
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            f"key algorithm {name!r} is not one of {', '.join(_BY_NAME)}",
        ) from None


def generate(algorithm: pb.KeyAlgorithm.ValueType) -> AccountKey:
    if algorithm == pb.SM2:
        return sm2.Sm2SigningKey.generate()
    return keys.SigningKey.generate()


def key_from_pem(pem: bytes, passphrase: bytes | None = None) -> AccountKey:
    """An Ed25519 or SM2 private key from a PEM file's bytes."""
    try:
        return keys.SigningKey.from_pem(pem, passphrase)
    except SparkError as ed25519_error:
        try:
            return sm2.Sm2SigningKey.from_pem(pem, passphrase)
        except SparkError:
            raise SparkError(
                ErrorCode.INVALID_KEY,
                f"{ed25519_error.message} (nor an SM2 private key)",
            ) from None


def check_signer(signer: bytes, algorithm: int) -> None:
    """INVALID_TX unless `signer` is a public key of the body's `signer_algorithm`."""
    expected = PUBLIC_KEY_BYTES.get(algorithm)  # type: ignore[call-overload]
    if expected is None:
        raise SparkError(ErrorCode.INVALID_TX, f"tx body's signer_algorithm {algorithm} is unknown")
    name = ALGORITHM_NAMES[algorithm]  # type: ignore[index]
    if len(signer) != expected:
        raise SparkError(
            ErrorCode.INVALID_TX,
            f"tx body's signer must be a {expected}-byte {name} public key, "
            f"got {len(signer)} bytes",
        )
    if algorithm == pb.SM2 and signer[0] != 0x04:
        raise SparkError(
            ErrorCode.INVALID_TX, "tx body's SM2 signer must be an uncompressed point (04 ...)"
        )


def verify(algorithm: int, public_key: bytes, tag: bytes, message: bytes, signature: bytes) -> bool:
    if algorithm == pb.SM2:
        return sm2.verify(public_key, tag, message, signature)
    if algorithm == pb.ED25519:
        return keys.verify(public_key, tag, message, signature)
    return False
