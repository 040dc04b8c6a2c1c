"""`spark keys new|list|show|import|export`: local account keys (Ed25519, or SM2 with
`--algorithm sm2`) in the user key directory.

`import --spark-private-key` takes the `priSPK…` text that Spark's SDKs print and stores the
key like any other (PEM, mode 0600); `export --format spark` prints it back in that form.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from sparkchain.cli.output import add_json_argument, emit_json, emit_text
from sparkchain.identifiers import accounts
from sparkchain.identifiers.accounts import AccountKey
from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.keys import SigningKey
from sparkchain.node import keystore


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = commands.add_parser("keys", help="create and show local keys")
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    sub.required = True

    new = sub.add_parser("new", help="create a new account key NAME (Ed25519 unless --algorithm)")
    new.add_argument("name")
    new.add_argument(
        "--algorithm",
        choices=sorted(accounts.ALGORITHM_NAMES.values()),
        default="ed25519",
        help="ed25519 (default) or sm2 (GB/T 32918, BID did:bid:zf...); validators stay Ed25519",
    )
    new.add_argument(
        "--passphrase",
        action="store_true",
        help="encrypt the key file (asks for the passphrase, or reads $SPARK_KEY_PASSPHRASE)",
    )
    add_json_argument(new)
    new.set_defaults(handler=_new)

    lst = sub.add_parser("list", help="list the keys in the key directory")
    add_json_argument(lst)
    lst.set_defaults(handler=_list)

    show = sub.add_parser("show", help="print a key's BID and public key")
    show.add_argument("name")
    add_json_argument(show)
    show.set_defaults(handler=_show)

    imp = sub.add_parser("import", help="store a key given in another form as key NAME")
    imp.add_argument("name")
    imp.add_argument(
        "--spark-private-key",
        required=True,
        metavar="KEY",
        help="the private key as Spark's SDKs print it (priSPK…); '-' reads it from stdin, "
        "which keeps it out of the shell history",
    )
    imp.add_argument(
        "--passphrase",
        action="store_true",
        help="encrypt the key file (asks for the passphrase, or reads $SPARK_KEY_PASSPHRASE)",
    )
    add_json_argument(imp)
    imp.set_defaults(handler=_import)

    export = sub.add_parser("export", help="print key NAME's private key in another form")
    export.add_argument("name")
    export.add_argument(
        "--format",
        required=True,
        choices=["spark"],
        help="spark: the priSPK… text Spark's SDKs read (an encrypted key asks its passphrase)",
    )
    export.set_defaults(handler=_export)


def passphrase_from_env_or_prompt(confirm: bool) -> bytes:
    env = os.environ.get("SPARK_KEY_PASSPHRASE")
    if env:
        return env.encode()
    first = getpass.getpass("passphrase: ")
    if confirm and getpass.getpass("again: ") != first:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "passphrases differ")
    if not first:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "empty passphrase")
    return first.encode()


def describe_key(name: str, key: AccountKey, path: Path) -> dict[str, str]:
    return {
        "name": name,
        "algorithm": accounts.ALGORITHM_NAMES[accounts.algorithm_of(key)],
        "bid": bid_from_public_key(key.public_key),
        "public_key": key.public_key.hex(),
        "path": str(path),
    }


def read_key(path: Path) -> AccountKey:
    """A key file, asking for the passphrase when the file is encrypted."""
    try:
        return keystore.read_account_key_file(path)
    except SparkError as exc:
        if exc.code is ErrorCode.INVALID_KEY and b"ENCRYPTED" in _head(path):
            return keystore.read_account_key_file(
                path, passphrase_from_env_or_prompt(confirm=False)
            )
        raise


def load_named_key(name: str) -> AccountKey:
    path = keystore.key_path(name)
    try:
        return read_key(path)
    except SparkError as exc:
        if exc.code is ErrorCode.NOT_FOUND:
            raise SparkError(
                ErrorCode.NOT_FOUND, f"no key named {name!r} in {keystore.key_dir()}"
            ) from None
        raise


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(64)
    except OSError:
        return b""


def _print(info: dict[str, str], as_json: bool) -> None:
    if as_json:
        emit_json(info)
    else:
        emit_text(f"name:       {info['name']}")
        emit_text(f"algorithm:  {info['algorithm']}")
        emit_text(f"bid:        {info['bid']}")
        emit_text(f"public key: {info['public_key']}")
        emit_text(f"file:       {info['path']}")


def _new(args: argparse.Namespace) -> int:
    path = keystore.key_path(args.name)
    passphrase = passphrase_from_env_or_prompt(confirm=True) if args.passphrase else None
    key = accounts.generate(accounts.parse_algorithm(args.algorithm))
    keystore.write_key_file(path, key, passphrase)
    _print(describe_key(args.name, key, path), args.json)
    return 0


def _list(args: argparse.Namespace) -> int:
    names = keystore.list_keys()
    if args.json:
        emit_json([{"name": n, "path": str(keystore.key_path(n))} for n in names])
    elif not names:
        emit_text(f"no keys in {keystore.key_dir()} (create one with: spark keys new NAME)")
    else:
        for n in names:
            emit_text(n)
    return 0


def _show(args: argparse.Namespace) -> int:
    key = load_named_key(args.name)
    _print(describe_key(args.name, key, keystore.key_path(args.name)), args.json)
    return 0


def _import(args: argparse.Namespace) -> int:
    path = keystore.key_path(args.name)
    text = sys.stdin.readline() if args.spark_private_key == "-" else args.spark_private_key
    key = SigningKey.from_spark_private_key(text)
    passphrase = passphrase_from_env_or_prompt(confirm=True) if args.passphrase else None
    keystore.write_key_file(path, key, passphrase)
    _print(describe_key(args.name, key, path), args.json)
    return 0


def _export(args: argparse.Namespace) -> int:
    key = load_named_key(args.name)
    if not isinstance(key, SigningKey):
        raise SparkError(
            ErrorCode.INVALID_KEY,
            f"{args.name} is an {accounts.ALGORITHM_NAMES[accounts.algorithm_of(key)]} key: "
            "--format spark exports Ed25519 keys (priSPK…) only",
        )
    emit_text(
        f"warning: this is the private key of {args.name}: anyone who reads it can sign as "
        f"{bid_from_public_key(key.public_key)}",
        file=sys.stderr,
    )
    emit_text(key.to_spark_private_key())
    return 0
