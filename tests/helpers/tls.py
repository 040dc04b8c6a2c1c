"""TLS material for in-process peers: one test CA, and certificates bound to node keys."""

from __future__ import annotations

import datetime
import functools
import ipaddress

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


def api_certificate(authority: TlsAuthority) -> tuple[bytes, bytes]:
    """A server certificate for the API on loopback (localhost, 127.0.0.1) issued by
    `authority`: (the chain, leaf then CA, as PEM; its private key as PEM)."""
    ca_key = serialization.load_pem_private_key(authority.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(authority.cert_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + authority.cert_pem
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return chain, key_pem
