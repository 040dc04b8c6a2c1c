"""Build, sign and check `SignedTx` envelopes exactly as DESIGN §4 says.

The signature, by the key the body names as its signer, covers TX_TAG then the body bytes as
sent. Tx id = H(body), H being the chain's hash (SHA-256, or SM3 when the genesis chose it),
so the id binds the signer. The signer is an Ed25519 key or, when the body's
`signer_algorithm` says so, an SM2 key (identifiers/accounts.py). A body must be canonical:
re-encoding the parsed body gives exactly the bytes signed (no unknown fields, no second
operation), or the tx is INVALID_TX.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from google.protobuf.message import DecodeError

from sparkchain.identifiers import accounts
from sparkchain.identifiers.accounts import AccountKey
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashFunction, sha256
from sparkchain.identifiers.keys import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, SigningKey, verify
from sparkchain.identifiers.limits import DEFAULT_TX_LIFETIME_MS, MAX_TX_BYTES, MAX_VALIDATORS
from sparkchain.identifiers.tags import GOVERNANCE_TAG, TX_TAG
from sparkchain.proto import types_pb2 as pb

OPERATIONS = (
    "create_prefix",
    "set_registrars",
    "transfer_prefix",
    "register",
    "register_batch",
    "update",
    "transfer",
    "revoke",
)
# operations signed by a quorum of validators instead of one signer (DESIGN §4, §12)
GOVERNANCE_OPERATIONS = ("update_validators",)


def tx_id(signed: pb.SignedTx, hash_fn: HashFunction = sha256) -> bytes:
    return hash_fn(signed.body)


def sign_body(body: pb.TxBody, key: AccountKey) -> pb.SignedTx:
    """Sign `body` as it is: its `signer` (and `signer_algorithm`) must already name `key`
    for the tx to check."""
    return sign_body_bytes(body.SerializeToString(), key)


def sign_body_bytes(body_bytes: bytes, key: AccountKey) -> pb.SignedTx:
    return pb.SignedTx(body=body_bytes, signature=key.sign(TX_TAG, body_bytes))


def signature_is_valid(signed: pb.SignedTx, body: pb.TxBody) -> bool:
    """Did `body.signer` sign `signed.body`? (`body` is `signed.body` decoded.)"""
    return accounts.verify(
        body.signer_algorithm, body.signer, TX_TAG, signed.body, signed.signature
    )


def check_signed_tx(
    signed: pb.SignedTx, chain_id: str | None = None, *, verify_signature: bool = True
) -> pb.TxBody:
    """Check the envelope, the signature and (if given) the chain id; return the body.

    Raises SparkError with TOO_LARGE, INVALID_TX, BAD_SIGNATURE or WRONG_CHAIN. With
    `verify_signature` False (a signature already verified, e.g. on mempool admission) the
    signature's length is still checked but not the signature itself.
    """
    if len(signed.body) > MAX_TX_BYTES:
        raise SparkError(
            ErrorCode.TOO_LARGE,
            f"tx body is {len(signed.body)} bytes, at most {MAX_TX_BYTES} allowed",
        )
    if signed.approvals or (not signed.signature and _is_governance(signed.body)):
        return check_governance_tx(signed, chain_id, verify_signatures=verify_signature)
    if len(signed.signature) != SIGNATURE_BYTES:
        raise SparkError(
            ErrorCode.BAD_SIGNATURE,
            f"signature must be {SIGNATURE_BYTES} bytes, got {len(signed.signature)}",
        )
    body = decode_body(signed.body)
    if body.WhichOneof("op") in GOVERNANCE_OPERATIONS:
        raise SparkError(
            ErrorCode.INVALID_TX,
            f"a {body.WhichOneof('op')} tx carries validators' approvals, not one signature",
        )
    accounts.check_signer(body.signer, body.signer_algorithm)
    if verify_signature and not signature_is_valid(signed, body):
        raise SparkError(
            ErrorCode.BAD_SIGNATURE, "signature is not the body's signer's signature of the body"
        )
    if chain_id is not None and body.chain_id != chain_id:
        raise SparkError(
            ErrorCode.WRONG_CHAIN, f"tx is for chain {body.chain_id!r}, this is {chain_id!r}"
        )
    return body


def check_governance_tx(
    signed: pb.SignedTx, chain_id: str | None = None, *, verify_signatures: bool = True
) -> pb.TxBody:
    """The envelope of a governance tx: a governance body with no signer and no signature,
    and 1..MAX_VALIDATORS approvals by distinct keys, each a valid signature of GOVERNANCE_TAG
    then the body. Whether the approvers are a quorum of validators is a rule of the state
    (ledger/validators.py): here only the form and the signatures."""
    approvals = signed.approvals
    if len(approvals) > MAX_VALIDATORS:
        raise SparkError(
            ErrorCode.TOO_LARGE, f"{len(approvals)} approvals, at most {MAX_VALIDATORS} allowed"
        )
    body = decode_body(signed.body)
    operation = body.WhichOneof("op")
    if operation not in GOVERNANCE_OPERATIONS:
        raise SparkError(
            ErrorCode.INVALID_TX, f"a {operation} tx has one signer: approvals are not allowed"
        )
    if body.signer or body.signer_algorithm or signed.signature:
        raise SparkError(
            ErrorCode.INVALID_TX,
            "a governance tx has an empty signer and signature (its approvals sign it)",
        )
    if not approvals:
        raise SparkError(ErrorCode.NO_QUORUM, "a governance tx without any validator's approval")
    seen: set[bytes] = set()
    for number, approval in enumerate(approvals):
        if len(approval.validator) != PUBLIC_KEY_BYTES:
            raise SparkError(
                ErrorCode.INVALID_TX, f"approvals[{number}].validator is not a 32-byte key"
            )
        if approval.validator in seen:
            raise SparkError(
                ErrorCode.INVALID_TX,
                f"approvals[{number}]: key {approval.validator.hex()} approves twice",
            )
        seen.add(approval.validator)
        if len(approval.signature) != SIGNATURE_BYTES:
            raise SparkError(
                ErrorCode.BAD_SIGNATURE,
                f"approvals[{number}].signature must be {SIGNATURE_BYTES} bytes, "
                f"got {len(approval.signature)}",
            )
        if verify_signatures and not verify(
            approval.validator, GOVERNANCE_TAG, signed.body, approval.signature
        ):
            raise SparkError(
                ErrorCode.BAD_SIGNATURE,
                f"approvals[{number}] is not {approval.validator.hex()}'s signature of the body",
            )
    if chain_id is not None and body.chain_id != chain_id:
        raise SparkError(
            ErrorCode.WRONG_CHAIN, f"tx is for chain {body.chain_id!r}, this is {chain_id!r}"
        )
    return body


def _is_governance(body_bytes: bytes) -> bool:
    try:
        return decode_body(body_bytes).WhichOneof("op") in GOVERNANCE_OPERATIONS
    except SparkError:
        return False


def approve_body(body_bytes: bytes, key: SigningKey) -> pb.Approval:
    """One validator's approval of a governance body (the bytes as they will be sent)."""
    return pb.Approval(validator=key.public_key, signature=key.sign(GOVERNANCE_TAG, body_bytes))


def governance_body(
    chain_id: str, nonce: int, expires_at_ms: int, update: pb.UpdateValidators
) -> bytes:
    """The canonical bytes of an UpdateValidators body: no signer (DESIGN §4)."""
    body = pb.TxBody(chain_id=chain_id, nonce=nonce, expires_at_ms=expires_at_ms)
    body.update_validators.CopyFrom(update)
    return body.SerializeToString()


def decode_body(body_bytes: bytes) -> pb.TxBody:
    """The body's message, if `body_bytes` are its one canonical encoding (DESIGN §4)."""
    body = pb.TxBody()
    try:
        body.ParseFromString(body_bytes)
    except DecodeError as exc:
        raise SparkError(ErrorCode.INVALID_TX, f"tx body does not decode: {exc}") from exc
    if body.WhichOneof("op") is None:
        raise SparkError(ErrorCode.INVALID_TX, "tx body has no operation")
    # A parser forgives what a signer never meant: of two operations it keeps the last (a
    # Register signed with a Revoke behind it would run as the Revoke), and it skips fields
    # it does not know. Only the bytes that re-encoding the parsed body gives are accepted,
    # so what was signed is exactly what runs.
    body.DiscardUnknownFields()
    if body.SerializeToString() != body_bytes:
        raise SparkError(
            ErrorCode.INVALID_TX, f"tx body is not canonical: {_why_not_canonical(body_bytes)}"
        )
    return body


_OPERATION_FIELDS = {
    field.number: field.name for field in pb.TxBody.DESCRIPTOR.oneofs_by_name["op"].fields
}


def _why_not_canonical(body_bytes: bytes) -> str:
    parsed = pb.TxBody.FromString(body_bytes)
    operations = [
        _OPERATION_FIELDS[n] for n in _top_level_field_numbers(body_bytes) if n in _OPERATION_FIELDS
    ]
    if len(operations) > 1:
        return f"it holds {len(operations)} operations ({', '.join(operations)}); one is allowed"
    with_unknown = parsed.SerializeToString()
    parsed.DiscardUnknownFields()
    if parsed.SerializeToString() != with_unknown:
        return "it has unknown fields"
    return (
        "re-encoding it gives other bytes than those signed (fields out of order, repeated "
        "or written with their default value, or a non-minimal encoding)"
    )


def _top_level_field_numbers(data: bytes) -> list[int]:
    """The field numbers of a protobuf message's top-level fields, in wire order (`data`
    parsed already, so it is well formed; fields inside unknown groups are skipped)."""
    numbers: list[int] = []
    position = group_depth = 0
    while position < len(data):
        tag, position = _varint(data, position)
        wire_type = tag & 7
        if wire_type == 0:
            _, position = _varint(data, position)
        elif wire_type == 2:
            length, position = _varint(data, position)
            position += length
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        group_depth += {3: 1, 4: -1}.get(wire_type, 0)
        if group_depth == 0 and wire_type != 4:
            numbers.append(tag >> 3)
    return numbers


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        shift += 7
        if not byte & 0x80:
            return value, position


class TxBuilder:
    """Builds signed transactions for one chain and one key.

    The clock and the randomness come from the caller, as everywhere in this pure layer:
    `now_ms` per tx (the CLI reads the clock; tests pass fixed times) and `rng` for the
    random 64-bit nonces (the CLI passes `secrets.SystemRandom()`; tests a seeded Random).
    """

    def __init__(self, chain_id: str, key: AccountKey, rng: random.Random) -> None:
        self.chain_id = chain_id
        self.key = key
        self.rng = rng

    def _body(self, now_ms: int, lifetime_ms: int) -> pb.TxBody:
        return pb.TxBody(
            chain_id=self.chain_id,
            signer=self.key.public_key,
            signer_algorithm=accounts.algorithm_of(self.key),
            nonce=self.rng.getrandbits(64),
            expires_at_ms=now_ms + lifetime_ms,
        )

    def _sign(self, body: pb.TxBody) -> pb.SignedTx:
        return sign_body(body, self.key)

    def create_prefix(
        self, prefix: str, owner: str, *, now_ms: int, lifetime_ms: int = DEFAULT_TX_LIFETIME_MS
    ) -> pb.SignedTx:
        body = self._body(now_ms, lifetime_ms)
        body.create_prefix.prefix = prefix
        body.create_prefix.owner = owner
        return self._sign(body)

    def set_registrars(
        self,
        prefix: str,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        *,
        now_ms: int,
        lifetime_ms: int = DEFAULT_TX_LIFETIME_MS,
    ) -> pb.SignedTx:
        body = self._body(now_ms, lifetime_ms)
        body.set_registrars.prefix = prefix
        body.set_registrars.add.extend(add)
        body.set_registrars.remove.extend(remove)
        return self._sign(body)

    def transfer_prefix(
        self, prefix: str, new_owner: str, *, now_ms: int, lifetime_ms: int = DEFAULT_TX_LIFETIME_MS
    ) -> pb.SignedTx:
        body = self._body(now_ms, lifetime_ms)
        body.transfer_prefix.prefix = prefix
        body.transfer_prefix.new_owner = new_owner
        return self._sign(body)

    def register(
        self,
        identifier: str,
        values: Iterable[pb.Value] = (),
        owner: str = "",
        *,
        now_ms: int,
        lifetime_ms: int = DEFAULT_TX_LIFETIME_MS,
    ) -> pb.SignedTx:
        body = self._body(now_ms, lifetime_ms)
        body.register.identifier = identifier
        body.register.values.extend(values)
        body.register.owner = owner
        return self._sign(body)

    def register_batch(
        self,
        prefix: str,
        items: Iterable[tuple[str, Iterable[pb.Value]]],
        owner: str = "",
        *,
        now_ms: int,
        lifetime_ms: int = DEFAULT_TX_LIFETIME_MS,
    ) -> pb.SignedTx:
        body = self._body(now_ms, lifetime_ms)
        body.register_batch.prefix = prefix
        body.register_batch.owner = owner
        for suffix, values in items:
            body.register_batch.items.add(suffix=suffix, values=list(values))
        return self._sign(body)

    def update(
        self,
        identifier: str,
        upsert: Iterable[pb.Value] = (),
        remove_indexes: Iterable[int] = (),
        *,
        now_ms: int,
        lifetime_ms: int = DEFAULT_TX_LIFETIME_MS,
    ) -> pb.SignedTx:
        body = self._body(now_ms, lifetime_ms)
        body.update.identifier = identifier
        body.update.upsert.extend(upsert)
        body.update.remove_indexes.extend(remove_indexes)
        return self._sign(body)

    def transfer(
        self,
        identifier: str,
        new_owner: str,
        *,
        now_ms: int,
        lifetime_ms: int = DEFAULT_TX_LIFETIME_MS,
    ) -> pb.SignedTx:
        body = self._body(now_ms, lifetime_ms)
        body.transfer.identifier = identifier
        body.transfer.new_owner = new_owner
        return self._sign(body)

    def revoke(
        self,
        identifier: str,
        reason: str = "",
        *,
        now_ms: int,
        lifetime_ms: int = DEFAULT_TX_LIFETIME_MS,
    ) -> pb.SignedTx:
        body = self._body(now_ms, lifetime_ms)
        body.revoke.identifier = identifier
        body.revoke.reason = reason
        return self._sign(body)


def value(index: int, type_: str, data: bytes | str, ttl: int | None = None) -> pb.Value:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    v = pb.Value(index=index, type=type_, data=raw)
    if ttl is not None:
        v.ttl = ttl
    return v
