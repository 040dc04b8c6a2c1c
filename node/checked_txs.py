"""What a node already checked of the txs it has seen, so that each check runs once.

A tx is met several times on a node: admitted to the mempool (envelope and signature in
the verify pool, then the rules on the event loop), executed again in the block a proposer
builds or a validator validates, sometimes in several rounds. Two checks give the same
answer every time for the same bytes, and are remembered here:

- the signature (DESIGN §7: verified once per node): a tx id, which binds the signer (it is
  inside the body), with the signature and any approvals, so no other tx reuses an entry;
- the body's decoding and its envelope (canonical encoding, size, chain id), which cost
  about as much as the rules of a small tx, and 6 ms for a 3 MB RegisterBatch each time
  (issue 10, attack 1: such a batch was decoded at admission and again in its block).
  The bodies kept are those of txs admitted (met again in a block), bounded by count and
  by bytes; the rules never change a body.

A remembered body is not a verified signature: the two are kept apart, and a body decoded
without its signature checked vouches for nothing but its decoding.
"""

from __future__ import annotations

from collections import OrderedDict

from sparkchain.ledger.rules import check_envelope
from sparkchain.proto import types_pb2 as pb

VERIFIED_SIGNATURE_CACHE_ENTRIES = 200_000
# decoded bodies kept: the mempool's recent txs until their block is built or validated
CHECKED_BODY_CACHE_TXS = 20_000
CHECKED_BODY_CACHE_BYTES = 16 * 1024 * 1024


def signature_key(signed: pb.SignedTx, the_tx_id: bytes) -> bytes:
    """What a verified signature is remembered by: the tx id (of the chain's hash), the
    signature and, for a governance tx, every approval."""
    approvals = b"".join(a.validator + a.signature for a in signed.approvals)
    return the_tx_id + signed.signature + approvals


class CheckedTxs:
    """Not thread-safe: the ledger's thread (the node's event loop) only."""

    def __init__(
        self,
        chain_id: str,
        *,
        max_verified: int = VERIFIED_SIGNATURE_CACHE_ENTRIES,
        max_bodies: int = CHECKED_BODY_CACHE_TXS,
        max_body_bytes: int = CHECKED_BODY_CACHE_BYTES,
    ) -> None:
        self.chain_id = chain_id
        self._max_verified = max_verified
        self._verified: dict[bytes, None] = {}
        self._max_bodies = max_bodies
        self._max_body_bytes = max_body_bytes
        self._bodies: OrderedDict[bytes, tuple[pb.TxBody, int]] = OrderedDict()
        self._body_bytes = 0

    def body(
        self, signed: pb.SignedTx, the_tx_id: bytes, verify_signature: bool, *, remember: bool
    ) -> pb.TxBody:
        """`signed`'s body, its envelope checked and (with `verify_signature`) its signature,
        each only if not done before. Raises as `check_envelope` does. `remember`: keep the
        body decoded here (a tx admitted, to be met again in a block), not only the verified
        signature: a block's execution does not, or replaying a chain would fill the cache
        with bodies never met again."""
        key = signature_key(signed, the_tx_id)
        if verify_signature and key not in self._verified:
            body = check_envelope(signed, self.chain_id, verify_signature=True)
            self.signature_verified(key)
        else:
            known = self._bodies.get(key)
            if known is not None:
                return known[0]
            body = check_envelope(signed, self.chain_id, verify_signature=False)
        if remember:
            self.remember_body(key, signed, body)
        return body

    def known_body(self, signed: pb.SignedTx, the_tx_id: bytes) -> pb.TxBody | None:
        known = self._bodies.get(signature_key(signed, the_tx_id))
        return None if known is None else known[0]

    def signature_verified(self, key: bytes) -> None:
        verified = self._verified
        if len(verified) >= self._max_verified:
            for stale in list(verified)[: self._max_verified // 2]:
                del verified[stale]
        verified[key] = None

    def remember_body(self, key: bytes, signed: pb.SignedTx, body: pb.TxBody) -> None:
        """Keep `body`, decoded from `signed.body` with its envelope checked (by
        `check_envelope` or `check_signed_tx` with this chain id)."""
        if key in self._bodies:
            return
        size = signed.ByteSize()
        if size > self._max_body_bytes:
            return
        bodies = self._bodies
        while bodies and (
            len(bodies) >= self._max_bodies or self._body_bytes + size > self._max_body_bytes
        ):
            _, (_, dropped) = bodies.popitem(last=False)
            self._body_bytes -= dropped
        bodies[key] = (body, size)
        self._body_bytes += size
