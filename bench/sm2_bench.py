"""SM2 libraries for account signatures (issue 16): signs and verifications per second on
one core, with Ed25519 (the chain's default, and the validators' key) as the same-run
baseline, and whether each library's signatures verify with the others (GB/T 32918 with the
default user id "1234567812345678", so interoperable).

Candidates are the SM2 packages that install from PyPI as wheels for Python 3.11:
- tongsuopy: the Tongsuo project's binding of its OpenSSL fork (cffi, abi3 wheel; locked);
- gmssl-fast: a C extension over GmSSL (abi3 wheel);
- gmssl: pure Python.
Only tongsuopy is a dependency; the others are measured when installed by hand
(`.venv/bin/pip install gmssl gmssl-fast`), else their rows say "not installed".

A library is fit for a validator's hot path when it verifies at least the issue 5 goal for
Ed25519 (bench/keys_bench.py: 7,500 verifications/s per core); none comes close, so
validators keep Ed25519 and SM2 is for accounts only (identifiers/sm2.py).
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from typing import Any

import nacl.bindings
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bench.keys_bench import GOAL_VERIFICATIONS_PER_CORE, MESSAGE_BYTES
from bench.report import print_table, rate, ratio
from sparkchain.identifiers import sm2
from sparkchain.identifiers.tags import TX_TAG

# (sign, verify(public key, message, r||s)) of one library, for one fixed key
Library = tuple[Callable[[bytes], bytes], Callable[[bytes, bytes, bytes], bool]]


def _per_second(operation: Callable[[], object], min_seconds: float) -> float:
    count = 0
    started = time.perf_counter()
    while True:
        operation()
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return count / elapsed


def _tongsuopy(key: sm2.Sm2SigningKey) -> Library:
    return (
        lambda message: key.sign(TX_TAG, message),
        lambda public, message, signature: sm2.verify(public, TX_TAG, message, signature),
    )


def _gmssl_fast(key: sm2.Sm2SigningKey) -> Library | None:
    try:
        module: Any = importlib.import_module("gmssl_fast")
    except ImportError:
        return None
    scalar = key.private_key.private_numbers().private_value
    signer = module.SM2(private_key=f"{scalar:064x}", public_key=key.public_key.hex())

    def verify(public: bytes, message: bytes, signature: bytes) -> bool:
        return bool(module.SM2(public_key=public.hex()).verify(TX_TAG + message, signature))

    return (lambda message: bytes(signer.sign(TX_TAG + message)), verify)


def _gmssl(key: sm2.Sm2SigningKey) -> Library | None:
    try:
        module: Any = importlib.import_module("gmssl.sm2")
    except ImportError:
        return None
    scalar = key.private_key.private_numbers().private_value
    signer = module.CryptSM2(private_key=f"{scalar:064x}", public_key=key.public_key[1:].hex())

    def verify(public: bytes, message: bytes, signature: bytes) -> bool:
        checker = module.CryptSM2(private_key="", public_key=public[1:].hex())
        return bool(checker.verify_with_sm3(signature.hex(), TX_TAG + message))

    return (lambda message: bytes.fromhex(signer.sign_with_sm3(TX_TAG + message)), verify)


def run(quick: bool) -> None:
    min_seconds = 0.3 if quick else 2.0
    message = os.urandom(MESSAGE_BYTES)
    key = sm2.Sm2SigningKey.generate()
    candidates: dict[str, Library | None] = {
        "tongsuopy (chosen)": _tongsuopy(key),
        "gmssl-fast": _gmssl_fast(key),
        "gmssl (pure Python)": _gmssl(key),
    }
    reference = candidates["tongsuopy (chosen)"]
    assert reference is not None
    reference_signature = reference[0](message)

    ed_key = Ed25519PrivateKey.generate()
    ed_public = ed_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ed_signature = ed_key.sign(TX_TAG + message)
    ed_sign = _per_second(lambda: ed_key.sign(TX_TAG + message), min_seconds)
    ed_verify = _per_second(
        lambda: nacl.bindings.crypto_sign_open(ed_signature + TX_TAG + message, ed_public),
        min_seconds,
    )
    rows: list[list[object]] = [
        [
            "baseline: Ed25519 (cryptography signs, PyNaCl verifies)",
            rate(ed_sign),
            rate(ed_verify),
            ratio(1.0),
            "-",
        ],
    ]
    goals: list[tuple[str, bool | None]] = [
        (f"≥ {GOAL_VERIFICATIONS_PER_CORE:,}/s", ed_verify >= GOAL_VERIFICATIONS_PER_CORE)
    ]
    for label, library in candidates.items():
        if library is None:
            rows.append([label, "not installed", "", "", ""])
            goals.append(("", None))
            continue
        sign, verify = library
        own_signature = sign(message)
        # interop both ways: the library checks tongsuopy's signature, tongsuopy checks its
        interop = verify(key.public_key, message, reference_signature) and sm2.verify(
            key.public_key, TX_TAG, message, own_signature
        )
        signs = _per_second(lambda sign=sign: sign(message), min_seconds)  # type: ignore[misc]
        verifies = _per_second(
            lambda verify=verify: verify(key.public_key, message, reference_signature),  # type: ignore[misc]
            min_seconds,
        )
        rows.append(
            [
                label,
                rate(signs),
                rate(verifies),
                ratio(ed_verify / verifies),
                "yes" if interop else "NO",
            ]
        )
        goals.append(
            (f"≥ {GOAL_VERIFICATIONS_PER_CORE:,}/s", verifies >= GOAL_VERIFICATIONS_PER_CORE)
        )
    print_table(
        f"SM2 signatures of a {MESSAGE_BYTES}-byte tx body, one core (validator hot path goal: "
        "Ed25519's)",
        ["library", "signs/s", "verifies/s", "Ed25519 verifies faster by", "interoperates"],
        rows,
        goals=goals,
    )
