"""Key files on disk: PEM, mode 0600, in a key directory ($SPARK_HOME/keys or ~/.spark/keys)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from sparkchain.identifiers.accounts import AccountKey, key_from_pem
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey

KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
KEY_FILE_MODE = 0o600
# the development key: owns the dev chain's root prefix and is the CLI's default signer
DEV_KEY_NAME = "dev"


def spark_home() -> Path:
    env = os.environ.get("SPARK_HOME")
    return Path(env).expanduser() if env else Path.home() / ".spark"


def key_dir(home: Path | None = None) -> Path:
    return (home or spark_home()) / "keys"


def check_key_name(name: str) -> str:
    if not KEY_NAME.fullmatch(name):
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            f"key name {name!r} must be 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
        )
    return name


def write_key_file(path: Path, key: AccountKey, passphrase: bytes | None = None) -> None:
    """Create `path` with mode 0600 from the start (never world-readable, even briefly)."""
    write_private_file(path, key.to_pem(passphrase))


def write_private_file(path: Path, data: bytes) -> None:
    """Create `path` (which must not exist) with mode 0600 from the start."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError:
        raise SparkError(ErrorCode.EXISTS, f"key file {path} already exists") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def read_key_file(path: Path, passphrase: bytes | None = None) -> SigningKey:
    """The Ed25519 key in `path` (a node's key); refused like any private file open to
    others."""
    pem = read_private_file(path)
    try:
        return SigningKey.from_pem(pem, passphrase)
    except SparkError as exc:
        raise SparkError(exc.code, f"{path}: {exc.message}") from None


def read_account_key_file(path: Path, passphrase: bytes | None = None) -> AccountKey:
    """The account key in `path`, Ed25519 or SM2 (a tx signer's key)."""
    pem = read_private_file(path)
    try:
        return key_from_pem(pem, passphrase)
    except SparkError as exc:
        raise SparkError(exc.code, f"{path}: {exc.message}") from None


def read_private_file(path: Path) -> bytes:
    """The bytes of a private key file; refused, as ssh refuses a private key, when the
    file is readable or writable by anyone but its owner (a key others could read is no
    longer secret)."""
    try:
        with path.open("rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            if mode & 0o077:
                raise SparkError(
                    ErrorCode.INVALID_KEY,
                    f"key file {path} is open to others (mode {stat.S_IMODE(mode):04o}); "
                    f"make it private with: chmod 600 {path}",
                )
            return fh.read()
    except FileNotFoundError:
        raise SparkError(ErrorCode.NOT_FOUND, f"key file {path} does not exist") from None
    except OSError as exc:
        raise SparkError(ErrorCode.INVALID_KEY, f"cannot read key file {path}: {exc}") from exc


def key_path(name: str, home: Path | None = None) -> Path:
    return key_dir(home) / f"{check_key_name(name)}.pem"


def list_keys(home: Path | None = None) -> list[str]:
    directory = key_dir(home)
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.pem"))
