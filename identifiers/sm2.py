"""SM2 account keys (GB/T 32918, China's national signature standard) for signing txs.

Signatures follow GB/T 32918.2: the signed digest is SM3(ZA || message), ZA binding the
signer's public key and the default user id "1234567812345678" (as every SM2 library does
when given none), so signatures made here verify elsewhere and the other way round. On the
wire a public key is the 65-byte uncompressed point 04 || X || Y and a signature is r || s
(32 bytes each), as Spark's SDKs write them.

The library is tongsuopy (the Tongsuo project's binding of its OpenSSL fork), chosen by
bench/sm2_bench.py: the fastest SM2 of the candidates that install as wheels for this
Python, and interoperable with the others. It is still about 10-20 times slower than
Ed25519, so validators keep Ed25519 keys (votes are the hot path); SM2 is for accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from tongsuopy.crypto import hashes as tongsuo_hashes
from tongsuopy.crypto import serialization as tongsuo_serialization
from tongsuopy.crypto.asymciphers import ec as tongsuo_ec
from tongsuopy.crypto.exceptions import InvalidSignature, UnsupportedAlgorithm

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.tags import SIGNING_TAGS

SM2_PUBLIC_KEY_BYTES = 65  # 04 || X || Y
SM2_SIGNATURE_BYTES = 64  # r || s
_SCALAR_BYTES = 32
_CURVE = tongsuo_ec.SM2()
# GB/T 32918.5: the order n of the SM2 curve's base point
SM2_ORDER = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)


def _signature_algorithm() -> Any:
    return tongsuo_ec.ECDSA(tongsuo_hashes.SM3())


def _check_tag(tag: bytes) -> None:
    if tag not in SIGNING_TAGS:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, f"unknown signing tag {tag!r}")


def check_public_key(raw: bytes) -> None:
    """INVALID_KEY unless `raw` is an uncompressed SM2 point on the curve."""
    if len(raw) != SM2_PUBLIC_KEY_BYTES or raw[0] != 0x04:
        raise SparkError(
            ErrorCode.INVALID_KEY,
            f"SM2 public key must be {SM2_PUBLIC_KEY_BYTES} bytes starting with 04, "
            f"got {len(raw)} bytes",
        )
    _load_public_key(raw)


def _load_public_key(raw: bytes) -> Any:
    try:
        return tongsuo_ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, raw)
    except (ValueError, TypeError) as exc:
        raise SparkError(
            ErrorCode.INVALID_KEY, "SM2 public key is not a point on the curve"
        ) from exc


def verify(public_key: bytes, tag: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` (r || s) is `public_key`'s SM2 signature of `tag || message`."""
    _check_tag(tag)
    if len(public_key) != SM2_PUBLIC_KEY_BYTES or len(signature) != SM2_SIGNATURE_BYTES:
        return False
    r = int.from_bytes(signature[:_SCALAR_BYTES], "big")
    s = int.from_bytes(signature[_SCALAR_BYTES:], "big")
    if not (0 < r < SM2_ORDER and 0 < s < SM2_ORDER):
        return False
    try:
        key = _load_public_key(public_key)
        key.verify(encode_dss_signature(r, s), tag + message, _signature_algorithm())
    except (SparkError, InvalidSignature):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Sm2SigningKey:
    """An SM2 private key with its 65-byte public key."""

    private_key: Any  # tongsuopy's EllipticCurvePrivateKey (the library is untyped)
    public_key: bytes

    @classmethod
    def generate(cls) -> Sm2SigningKey:
        return cls.from_private_key(tongsuo_ec.generate_private_key(_CURVE))

    @classmethod
    def from_private_key(cls, private_key: Any) -> Sm2SigningKey:
        raw = private_key.public_key().public_bytes(
            tongsuo_serialization.Encoding.X962,
            tongsuo_serialization.PublicFormat.UncompressedPoint,
        )
        return cls(private_key, bytes(raw))

    @classmethod
    def from_scalar(cls, scalar: int) -> Sm2SigningKey:
        """A key from its private scalar (deterministic keys for tests)."""
        if not 0 < scalar < SM2_ORDER - 1:
            raise SparkError(ErrorCode.INVALID_KEY, "SM2 private scalar out of range")
        return cls.from_private_key(tongsuo_ec.derive_private_key(scalar, _CURVE))

    @classmethod
    def from_pem(cls, pem: bytes, passphrase: bytes | None = None) -> Sm2SigningKey:
        try:
            key = tongsuo_serialization.load_pem_private_key(pem, password=passphrase)
        except TypeError as exc:
            raise SparkError(ErrorCode.INVALID_KEY, f"key file passphrase: {exc}") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise SparkError(
                ErrorCode.INVALID_KEY, "not a PEM SM2 private key, or wrong passphrase"
            ) from exc
        if not isinstance(key, tongsuo_ec.EllipticCurvePrivateKey) or key.curve.name != "SM2":
            raise SparkError(ErrorCode.INVALID_KEY, "PEM key is not an SM2 private key")
        return cls.from_private_key(key)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption: Any = (
            tongsuo_serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else tongsuo_serialization.NoEncryption()
        )
        return bytes(
            self.private_key.private_bytes(
                tongsuo_serialization.Encoding.PEM,
                tongsuo_serialization.PrivateFormat.PKCS8,
                encryption,
            )
        )

    def sign(self, tag: bytes, message: bytes) -> bytes:
        _check_tag(tag)
        der = self.private_key.sign(tag + message, _signature_algorithm())
        r, s = decode_dss_signature(der)
        return r.to_bytes(_SCALAR_BYTES, "big") + s.to_bytes(_SCALAR_BYTES, "big")
