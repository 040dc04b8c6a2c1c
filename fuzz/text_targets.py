"""Fuzz targets over text and files: identifiers, BIDs, OIDs, GS1 keys and Digital Links,
genesis.json, config.toml and the last-signed record."""

from __future__ import annotations

import atexit
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar

from sparkchain.cli import import_cmd
from sparkchain.consensus.lastsigned import LastSigned
from sparkchain.identifiers import bid, gs1, handle, oid
from sparkchain.identifiers.errors import SparkError
from sparkchain.ledger.genesis import parse_genesis
from sparkchain.node.config import parse_config

T = TypeVar("T", str, bytes)


def outside_text(data: bytes) -> str:
    """Bytes as a command-line argument reaches Python: UTF-8, with undecodable bytes
    as lone surrogates (surrogateescape), which a str from protobuf can never hold."""
    return data.decode("utf-8", "surrogateescape")


def each(text: T, *parsers: Callable[[T], object]) -> None:
    """Every parser sees the text (one refusing it stops none of the others); raises the
    last typed error when all refuse it."""
    refusals: list[SparkError] = []
    for parse in parsers:
        try:
            parse(text)
        except SparkError as error:
            refusals.append(error)
    if len(refusals) == len(parsers):
        raise refusals[-1]


def handle_identifier(data: bytes) -> None:
    text = outside_text(data)
    handle.parse_identifier(text)
    handle.parse_identifier_by_rules(text)
    handle.identifier_key(text)


def handle_prefix(data: bytes) -> None:
    each(outside_text(data), handle.parse_prefix, handle.check_suffix)


def gs1_text(data: bytes) -> None:
    text = outside_text(data)
    gs1.is_valid_gtin(text)
    gs1.parse_gtin(text)


def _whole_link(text: str) -> None:
    link = gs1.parse_digital_link(text)
    link.canonical_suffix()
    link.fallback_suffixes()


def digital_link(data: bytes) -> None:
    each(outside_text(data), gs1.parse_digital_link_path, _whole_link)


def digital_link_path(data: bytes) -> None:
    link = gs1.parse_digital_link_path(outside_text(data))
    _ = link.element_string
    link.canonical_suffix()


def bid_text(data: bytes) -> None:
    each(outside_text(data), bid.base58_decode, bid.parse_public_key_text, bid.parse_bid)


def oid_text(data: bytes) -> None:
    text = outside_text(data)
    oid.is_valid_oid(text)
    oid.parse_oid(text)


def genesis_file(data: bytes) -> None:
    parse_genesis(data)


def config_file(data: bytes) -> None:
    """config.toml as load_config reads it: UTF-8 (else INVALID_CONFIG there), then TOML."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    parse_config(text)


@cache
def _scratch_file() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="spark-fuzz-import-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder / "rows.csv"


def import_csv(data: bytes) -> None:
    """The file of `spark import`: rows of identifiers and values (a refused row is
    reported with its line, not raised; a file that is not CSV text raises)."""
    path = _scratch_file()
    path.write_bytes(data)
    parsed = import_cmd.read_rows(path)
    import_cmd.make_batches(parsed.rows, 7)


def last_signed(data: bytes) -> None:
    """A validator's last-signed record file: damage must read as STORAGE_CORRUPT. The
    input is also given a matching checksum, so the fuzzer gets past it to the fields."""
    each(data, LastSigned.from_bytes, with_checksum)


def with_checksum(body: bytes) -> None:
    LastSigned.from_bytes(body + struct.pack(">I", zlib.crc32(body)))
