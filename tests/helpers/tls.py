"""TLS material for in-process peers: one test CA, and certificates bound to node keys."""

from __future__ import annotations

import functools

import grpc

from sparkchain.identifiers.keys import SigningKey
from sparkchain.node.peers import CHANNEL_OPTIONS
from sparkchain.node.tls import PeerTls, TlsAuthority, issue_node_certificate, new_authority


@functools.cache
def network_authority() -> TlsAuthority:
    return new_authority("sparkchain tests peer CA")


@functools.cache
def peer_tls(public_key: bytes, authority: TlsAuthority | None = None) -> PeerTls:
    """A certificate of `authority` (the test CA by default) bound to `public_key`."""
    return issue_node_certificate(authority or network_authority(), "test-node", public_key)


def peer_tls_for(key: SigningKey) -> PeerTls:
    return peer_tls(key.public_key)


def peer_channel(address: str, tls: PeerTls) -> grpc.aio.Channel:
    """A channel to a peer port, as a node dials it (with `tls`'s certificate)."""
    return grpc.aio.secure_channel(address, tls.channel_credentials(), options=CHANNEL_OPTIONS)
