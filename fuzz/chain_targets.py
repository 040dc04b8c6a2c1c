"""Fuzz targets over the chain: txs, blocks, sync responses and proof bundles.

Where the outermost protobuf message of an input arrives through gRPC (a SignedTx in a
SubmitRequest, a CommittedBlock from GetBlocks), bytes that do not parse are refused by
gRPC's deserializer before any code of ours runs: the target returns. Every message nested
in bytes fields (a tx body, a block's header, a record) is ours to decode.
"""

from __future__ import annotations

from typing import cast

from google.protobuf.message import DecodeError

from fuzz.world import NEXT_HEIGHT, Overlay, world
from sparkchain.identifiers.tx import decode_body
from sparkchain.ledger.bundle import parse_bundle_json, verify_bundle
from sparkchain.ledger.rules import apply_tx, execute_tx
from sparkchain.node.commit import Committer
from sparkchain.node.peers import PeerNetwork
from sparkchain.node.sync import BlockSync
from sparkchain.proto import peer_pb2
from sparkchain.proto import types_pb2 as pb


def tx_envelope(data: bytes) -> None:
    """A SignedTx as a client submits it: envelope, signature, then every rule."""
    try:
        signed = pb.SignedTx.FromString(data)
    except DecodeError:
        return
    w = world()
    execute_tx(
        Overlay(w.state),
        signed,
        w.genesis.chain_id,
        NEXT_HEIGHT,
        w.next_time_ms,
        root_authorities=w.genesis.root_authorities,
        genesis_validators=w.genesis_validators,
    )


def tx_body(data: bytes) -> None:
    """A tx body as its signer signed it (any bytes a key holder may sign): the canonical
    decoding, then every rule of its operation."""
    body = decode_body(data)
    w = world()
    signed = pb.SignedTx(body=data, signature=bytes(64))
    if body.WhichOneof("op") == "update_validators":
        signed.ClearField("signature")
        signed.approvals.add(validator=w.genesis.validators[0].public_key, signature=bytes(64))
    apply_tx(
        Overlay(w.state),
        signed,
        body,
        NEXT_HEIGHT,
        w.next_time_ms,
        root_authorities=w.genesis.root_authorities,
        genesis_validators=w.genesis_validators,
    )


def block(data: bytes) -> None:
    """A proposed block (a proposal's value): decoded and re-executed on the ledger."""
    world().ledger.validate_block(data)


class _NoCommit:
    """The committer of the sync target: checks that what sync commits is block 2."""

    def commit(self, pending: object, certificate: pb.CommitCertificate) -> None:
        if certificate.height != NEXT_HEIGHT:
            raise AssertionError(f"sync committed height {certificate.height}")


def sync_response(data: bytes) -> None:
    """A CommittedBlock from a peer's GetBlocks stream, through BlockSync.apply."""
    try:
        committed = peer_pb2.CommittedBlock.FromString(data)
    except DecodeError:
        return
    sync = BlockSync(
        world().ledger, cast(Committer, _NoCommit()), cast(PeerNetwork, None), follow=True
    )
    sync.apply(committed)


def bundle(data: bytes) -> None:
    """A proof bundle file (`spark verify`, the gateway's ?proof=true) against its genesis."""
    verify_bundle(parse_bundle_json(data), world().bundle_genesis)
