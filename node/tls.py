"""TLS for the peer port (DESIGN §11): the network's certificate authority, node
certificates bound to node keys, and the gRPC credentials built from them.

The binding (docs/architecture.md, "Peer links over TLS"):
  - a network CA (ECDSA P-256) issues one certificate per node; every node trusts only that
    CA on its peer port, and both ends must present a certificate (mutual TLS);
  - a node certificate carries the node's Ed25519 key (validator or observer) as the
    SubjectAltName URI `spark:node:<hex>`; its TLS key is a separate P-256 key;
  - the acceptor reads the dialer's certificate (grpc auth_context) and refuses a signed
    handshake whose key is not the one in that certificate (node/peers.py).
grpc.aio cannot show a dialer the server's certificate, so the dialer only knows that
the server holds some certificate of this CA; the signed handshake (which names the
receiver) then tells it which node answered.

Pure: keys and certificates in, PEM bytes out. Files are read and written by node/home.py.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import PUBLIC_KEY_BYTES
from sparkchain.identifiers.limits import TLS_CA_VALID_DAYS, TLS_NODE_CERT_VALID_DAYS

NODE_URI_PREFIX = "spark:node:"
# every node certificate names this host, and dialers check that name (not the address
# they dialed: peers are listed by IP address, and the node key is what identifies them)
PEER_SERVER_NAME = "spark-peer"
# the gRPC auth_context key under which a server finds the client's certificate
CLIENT_CERT_PROPERTY = "x509_pem_cert"
_CLOCK_SKEW = datetime.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class TlsAuthority:
    """A network CA: its private key (PEM, kept by whoever issues certificates) and
    its certificate (PEM, in every node home)."""

    key_pem: bytes
    cert_pem: bytes


@dataclass(frozen=True, slots=True)
class PeerTls:
    """What one node needs for mutual TLS on the peer port (all PEM)."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def server_credentials(self) -> grpc.ServerCredentials:
        # grpc python offers no minimum TLS version; its own clients negotiate TLS 1.3
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=self.ca_pem,
            require_client_auth=True,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_pem,
            private_key=self.key_pem,
            certificate_chain=self.cert_pem,
        )


def new_authority(name: str, now: datetime.datetime | None = None) -> TlsAuthority:
    """A self-signed CA that may issue node certificates (and no further CAs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = (now or _now()) - _CLOCK_SKEW
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=TLS_CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return TlsAuthority(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def issue_node_certificate(
    authority: TlsAuthority,
    node_name: str,
    node_public_key: bytes,
    now: datetime.datetime | None = None,
) -> PeerTls:
    """A fresh P-256 TLS key and its certificate, issued by `authority`, that binds it to
    the node key `node_public_key` (Ed25519) and serves and dials as PEER_SERVER_NAME."""
    if len(node_public_key) != PUBLIC_KEY_BYTES:
        raise SparkError(ErrorCode.INVALID_KEY, "a node key must be 32 bytes")
    ca_key = serialization.load_pem_private_key(authority.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise SparkError(ErrorCode.INVALID_KEY, "the TLS CA key must be an ECDSA key")
    ca_cert = x509.load_pem_x509_certificate(authority.cert_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    start = (now or _now()) - _CLOCK_SKEW
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=TLS_NODE_CERT_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(PEER_SERVER_NAME),
                    x509.UniformResourceIdentifier(NODE_URI_PREFIX + node_public_key.hex()),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return PeerTls(authority.cert_pem, cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def api_server_credentials(cert_pem: bytes, key_pem: bytes) -> grpc.ServerCredentials:
    """TLS on the public API: the operator's certificate, no client certificates."""
    return grpc.ssl_server_credentials([(key_pem, cert_pem)])


def first_dns_name(cert_pem: bytes) -> str | None:
    """The first DNS name in the first certificate of `cert_pem`, or None."""
    names = _alt_names(cert_pem)
    dns = names.get_values_for_type(x509.DNSName) if names is not None else []
    return dns[0] if dns else None


def node_key_in_certificate(cert_pem: bytes) -> bytes | None:
    """The node key a certificate is bound to (its `spark:node:` URI), or None."""
    names = _alt_names(cert_pem)
    if names is None:
        return None
    found = [
        uri[len(NODE_URI_PREFIX) :]
        for uri in names.get_values_for_type(x509.UniformResourceIdentifier)
        if uri.startswith(NODE_URI_PREFIX)
    ]
    if len(found) != 1:
        return None  # none, or an ambiguous certificate
    try:
        key = bytes.fromhex(found[0])
    except ValueError:
        return None
    return key if len(key) == PUBLIC_KEY_BYTES else None


def _alt_names(cert_pem: bytes) -> x509.SubjectAlternativeName | None:
    """The SubjectAltName of the first certificate in `cert_pem`, or None."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
