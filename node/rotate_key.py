"""`spark node rotate-key`: a validator's new key and its peer certificate, in two steps
(DESIGN §12; docs/operating.md, "Rotating a validator's key").

1. `prepare_rotation` (the node may run): writes `keys/validator.next.pem`, a fresh key,
   and beside the configured peer certificate and TLS key their `.next` twins, issued by
   the network CA for the new key. The operator then has the validators approve
   `--rotate NAME=<new public key>`.
2. `activate_rotation` (the node stopped, its ledger holding the committed change): moves
   the current key, certificate and TLS key aside as `*.retired-<old key prefix>` (nothing
   is deleted) and the `.next` files into their places. At its next start the consensus
   driver carries the old key's last-signed record over to the new key before it signs.

Activation is refused until the node's own ledger holds the change, so a node never
starts with a key its chain does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey
from sparkchain.node import keystore
from sparkchain.node.config import NodeConfig
from sparkchain.node.home import NodeHome
from sparkchain.node.launcher import refuse_while_running
from sparkchain.node.ledger import Ledger
from sparkchain.node.tls import TlsAuthority, issue_node_certificate, node_key_in_certificate

NEXT = ".next"


@dataclass(frozen=True, slots=True)
class RotationFiles:
    """Where one key's files live: the validator key, the peer certificate, its TLS key."""

    key: Path
    cert: Path
    tls_key: Path

    def twin(self, suffix: str) -> RotationFiles:
        return RotationFiles(*(_with_suffix(path, suffix) for path in self.paths()))

    def paths(self) -> tuple[Path, Path, Path]:
        return self.key, self.cert, self.tls_key


@dataclass(frozen=True, slots=True)
class Prepared:
    name: str
    old_public_key: bytes
    new_public_key: bytes
    files: RotationFiles


@dataclass(frozen=True, slots=True)
class Activated:
    name: str
    new_public_key: bytes
    retired: RotationFiles


def current_files(home: NodeHome) -> RotationFiles:
    config = _validator_config(home)
    return RotationFiles(
        home.validator_key_path, home.file(config.p2p.tls_cert), home.file(config.p2p.tls_key)
    )


def prepare_rotation(home: NodeHome, ca_cert: bytes, ca_key: bytes) -> Prepared:
    """Write the next key and its certificate; refused when a prepared rotation is waiting."""
    config = _validator_config(home)
    current = current_files(home)
    upcoming = current.twin(NEXT)
    waiting = [path for path in upcoming.paths() if path.exists()]
    if waiting:
        raise SparkError(
            ErrorCode.EXISTS,
            f"{waiting[0]} exists: a rotation is already prepared; activate it "
            "(`spark node rotate-key --activate`) or delete the .next files to start over",
        )
    old = home.node_key(config)
    new = SigningKey.generate()
    tls = issue_node_certificate(TlsAuthority(ca_key, ca_cert), config.node.name, new.public_key)
    keystore.write_key_file(upcoming.key, new)
    keystore.write_private_file(upcoming.tls_key, tls.key_pem)
    upcoming.cert.write_bytes(tls.cert_pem)
    return Prepared(config.node.name, old.public_key, new.public_key, upcoming)


def activate_rotation(home: NodeHome) -> Activated:
    """Put the prepared key and certificate in place of the current ones."""
    config = _validator_config(home)
    refuse_while_running(home, "stop it, then activate its new key")
    current = current_files(home)
    upcoming = current.twin(NEXT)
    missing = [path for path in upcoming.paths() if not path.exists()]
    if missing:
        raise SparkError(
            ErrorCode.NOT_FOUND,
            f"{missing[0]} is missing: prepare the rotation first "
            "(`spark node rotate-key --tls-ca … --tls-ca-key …`)",
        )
    old = home.node_key(config)
    new = keystore.read_key_file(upcoming.key)
    if node_key_in_certificate(upcoming.cert.read_bytes()) != new.public_key:
        raise SparkError(
            ErrorCode.INVALID_KEY,
            f"{upcoming.cert} is not bound to the key in {upcoming.key}: prepare again",
        )
    _check_chain_rotated(home, old.public_key, new.public_key)
    retired = current.twin(f".retired-{old.public_key.hex()[:16]}")
    for src, dst in zip(current.paths(), retired.paths(), strict=True):
        src.rename(dst)
    for src, dst in zip(upcoming.paths(), current.paths(), strict=True):
        src.rename(dst)
    return Activated(config.node.name, new.public_key, retired)


def _check_chain_rotated(home: NodeHome, old_key: bytes, new_key: bytes) -> None:
    ledger = Ledger.open(home.ledger_dir, home.genesis())
    try:
        if ledger.rotated(old_key, new_key) is None:
            raise SparkError(
                ErrorCode.NOT_FOUND,
                f"the ledger in {home.ledger_dir} (height {ledger.height}) has not rotated "
                f"{old_key.hex()} to {new_key.hex()}: have the validators approve "
                f"`--rotate NAME={new_key.hex()}`, let this node commit it, then activate",
            )
    finally:
        ledger.close()


def _validator_config(home: NodeHome) -> NodeConfig:
    if not home.exists():
        raise SparkError(ErrorCode.NOT_FOUND, f"{home.root} is not a node home (no config.toml)")
    config = home.config()
    if config.node.role != "validator":
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            f"{home.config_path}: this node is an observer; only a validator's key rotates",
        )
    return config


def _with_suffix(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)
