"""The peer handshake: binds a p2p stream to a validator (or observer) key (DESIGN §7).

Three legs on the stream, so that each side answers a fresh challenge of the other:
  dialer   -> acceptor: hello  (dialer's key and nonce Nd, no signature)
  acceptor -> dialer:   answer (acceptor's key, nonce Na, peer_nonce Nd, signature)
  dialer   -> acceptor: answer (dialer's key, nonce Nd, peer_nonce Na, signature)
A signature covers PEER_HANDSHAKE_TAG, the chain id, the sender's key, the receiver's key,
the receiver's nonce and the sender's nonce, so it cannot be replayed on another stream,
another chain, or by another key. The receiver's key matters against a relay: without it a
peer M could take V's challenge to validator B on M's own link to B and hand B's signed
answer (made for M) to V as B's answer to V. Each side signs for the key it was told
(hello / answer), and checks that the answer it got was signed for its own key.

What it does not give by itself: a channel. The stream runs over mutual TLS (node/tls.py),
and the acceptor checks that the key of the hello is the one in the dialer's certificate
(node/peers.py), so that a relay of the handshake cannot ride on another node's TLS
session; the dialer cannot see the acceptor's certificate (grpc.aio), and relies on this
signed answer naming it. The signature does not cover the TLS channel itself (grpc.aio
exposes no channel binding). Consensus messages carry their own signatures; status heights
and tx gossip do not (a peer's claimed height only makes us ask it for blocks, which are
certified).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import PUBLIC_KEY_BYTES, SigningKey, verify
from sparkchain.identifiers.tags import PEER_HANDSHAKE_TAG
from sparkchain.proto import peer_pb2

NONCE_BYTES = 32


@dataclass(frozen=True)
class LocalPeer:
    """Who this node is on the p2p network."""

    chain_id: str
    key: SigningKey
    observer: bool
    validators: frozenset[bytes]
    observers: frozenset[bytes] = frozenset()  # the keys of config.toml's [p2p] observers


def new_nonce() -> bytes:
    # a challenge must be unpredictable, so it comes from the OS, never from a seeded RNG
    return os.urandom(NONCE_BYTES)


def handshake_sign_bytes(
    chain_id: str, public_key: bytes, peer_key: bytes, peer_nonce: bytes, nonce: bytes
) -> bytes:
    """What `public_key` signs when answering `peer_key`'s challenge `peer_nonce`."""
    fields = (chain_id.encode(), public_key, peer_key, peer_nonce, nonce)
    return b"".join(struct.pack(">H", len(field)) + field for field in fields)


def hello(local: LocalPeer, nonce: bytes, height: int) -> peer_pb2.Handshake:
    return peer_pb2.Handshake(
        chain_id=local.chain_id,
        public_key=local.key.public_key,
        nonce=nonce,
        height=height,
        observer=local.observer,
    )


def answer(
    local: LocalPeer, nonce: bytes, peer_nonce: bytes, height: int, peer_key: bytes
) -> peer_pb2.Handshake:
    """Our signed answer to the challenge `peer_nonce` of the peer that says it is `peer_key`."""
    signed = handshake_sign_bytes(local.chain_id, local.key.public_key, peer_key, peer_nonce, nonce)
    return peer_pb2.Handshake(
        chain_id=local.chain_id,
        public_key=local.key.public_key,
        nonce=nonce,
        peer_nonce=peer_nonce,
        signature=local.key.sign(PEER_HANDSHAKE_TAG, signed),
        height=height,
        observer=local.observer,
    )


def check_admissible(local: LocalPeer, remote: peer_pb2.Handshake) -> None:
    """Reject a remote of another chain, a malformed key, ourselves, or a stranger.

    Validators link to validators; a key outside the validator set is admitted only as an
    observer link (which never carries consensus messages or txs), and only if the operator
    listed it in `[p2p] observers` (DESIGN §11): otherwise anyone could hold links open.
    """
    if remote.chain_id != local.chain_id:
        raise SparkError(
            ErrorCode.WRONG_CHAIN,
            f"peer is on chain {remote.chain_id!r}, this node is on {local.chain_id!r}",
        )
    key = bytes(remote.public_key)
    if len(key) != PUBLIC_KEY_BYTES:
        raise SparkError(ErrorCode.INVALID_KEY, f"peer key must be 32 bytes, got {len(key)}")
    if key == local.key.public_key:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "connected to itself")
    if len(remote.nonce) != NONCE_BYTES:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "handshake nonce must be 32 bytes")
    if key in local.validators:
        return
    if not remote.observer:
        raise SparkError(
            ErrorCode.UNAUTHORIZED, f"peer key {key.hex()} is not in the validator set"
        )
    if key not in local.observers:
        raise SparkError(
            ErrorCode.UNAUTHORIZED,
            f"observer key {key.hex()} is not in this node's [p2p] observers",
        )


def check_answer(local: LocalPeer, remote: peer_pb2.Handshake, our_nonce: bytes) -> None:
    """A signed answer to our challenge, made for us, from an admissible key."""
    check_admissible(local, remote)
    if remote.peer_nonce != our_nonce:
        raise SparkError(ErrorCode.BAD_SIGNATURE, "handshake answers another challenge")
    signed = handshake_sign_bytes(
        remote.chain_id, remote.public_key, local.key.public_key, remote.peer_nonce, remote.nonce
    )
    if not verify(remote.public_key, PEER_HANDSHAKE_TAG, signed, remote.signature):
        raise SparkError(
            ErrorCode.BAD_SIGNATURE,
            "handshake signature is not the peer key's answer to this node's challenge",
        )
