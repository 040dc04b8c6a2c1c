"""The explorer's JSON reads on the gateway (issue 12), and its static page at `/`.

  GET /api/status                  the node, the chain head, validators (with the last
                                   height each signed), peers, readiness
  GET /api/blocks?before=H&limit=N block summaries, latest first, below height H
  GET /api/blocks/{height|hash}    one block: header, txs, certificate signers, proposer
  GET /api/txs/{id}                one committed tx
  GET /api/prefixes/{prefix}       owner, registrars, child prefixes, identifiers (paged)
  GET /api/accounts/{bid}          the prefixes and identifiers a BID owns (paged)
  GET /api/history/{identifier}    the record's owner and status, and its changes
  GET /api/search?q=…              what the search box's text names, and where to look
  GET /api/genesis                 the genesis file, for a visitor to pin (after comparing
                                   its hash) and check proof bundles against in the page
  GET /api/events                  server-sent events, one per committed block
                                   (node/explorer_feed.py)

The reads are those of the gRPC API (node/ledger_reads.py); those that walk a range
(blocks, prefixes, accounts, history, the validators' signatures) run in the gateway's
scan thread. Errors are JSON `{"message": …}`: 400 for malformed input, 404 for what does
not exist, 503 when the node cannot answer yet (or too many event streams are open).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiohttp import web
from google.protobuf.json_format import MessageToDict

from sparkchain.identifiers.bid import bid_from_public_key, parse_bid
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.gs1 import (
    DigitalLink,
    is_valid_gtin,
    parse_digital_link,
    parse_digital_link_path,
    parse_gtin,
)
from sparkchain.identifiers.hashing import HashFunction
from sparkchain.identifiers.limits import (
    DEFAULT_EXPLORER_PAGE_SIZE,
    MAX_EXPLORER_HISTORY_ENTRIES,
    MAX_EXPLORER_PAGE_SIZE,
    MAX_EXPLORER_QUERY_CHARS,
    MAX_SIGNED_SCAN_BLOCKS,
    MAX_SSE_SUBSCRIBERS,
)
from sparkchain.identifiers.tx import decode_body, tx_id
from sparkchain.ledger.blocks import block_hash
from sparkchain.ledger.bundle import header_view
from sparkchain.ledger.genesis import genesis_to_dict
from sparkchain.node import schema
from sparkchain.node.api import StatusSource
from sparkchain.node.explorer_feed import BlockFeed, iso_time
from sparkchain.node.explorer_openapi import openapi_paths as openapi_paths
from sparkchain.node.explorer_vendor import vendor_files
from sparkchain.node.ledger import Ledger
from sparkchain.proto import types_pb2 as pb

log = logging.getLogger("spark.gateway.explorer")

JSON_TYPE = "application/json"
STATIC_DIR = Path(__file__).resolve().parent / "explorer"
# the page's files and their types: nothing else is served from STATIC_DIR
STATIC_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "views.js": "text/javascript",
    "style.css": "text/css",
    "verify.js": "text/javascript",
    "crypto.js": "text/javascript",
    **vendor_files(),  # the fallback crypto under vendor/ (node/explorer_vendor.py)
}
HASH_HEX_CHARS = 64
ANY = r"[\s\S]+"  # a route variable taking any character
T = TypeVar("T")


class ReadyState(Protocol):
    """What node/gateway.py's readiness answers."""

    @property
    def ready(self) -> bool: ...

    @property
    def reason(self) -> str: ...


class DigitalLinks(Protocol):
    """What the GS1 resolver (node/gateway_gs1.py) tells the search."""

    def identifier_of(self, link: DigitalLink) -> str: ...


class _BadInput(Exception):
    pass


# ---------------------------------------------------------------------------- pure parts


def page_size(query: Any) -> int:
    return whole_number(
        "limit", query.get("limit", ""), DEFAULT_EXPLORER_PAGE_SIZE, 1, MAX_EXPLORER_PAGE_SIZE
    )


def whole_number(name: str, text: str, default: int, minimum: int, maximum: int) -> int:
    if text == "":
        return default
    digits_ok = text.isascii() and text.isdigit() and len(text) <= len(str(maximum))
    if not digits_ok or not minimum <= int(text) <= maximum:
        raise _BadInput(f"{name} must be a whole number from {minimum} to {maximum}, got {text!r}")
    return int(text)


def query_text(query: Any, name: str) -> str:
    """A text parameter: UTF-8, at most MAX_EXPLORER_QUERY_CHARS characters."""
    text = str(query.get(name, ""))
    if len(text) > MAX_EXPLORER_QUERY_CHARS:
        raise _BadInput(f"{name} is {len(text)} characters, at most {MAX_EXPLORER_QUERY_CHARS}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _BadInput(f"{name} is not valid UTF-8 text") from None
    return text


def hash_bytes(text: str, what: str) -> bytes:
    if len(text) != HASH_HEX_CHARS or not all(ch in "0123456789abcdefABCDEF" for ch in text):
        raise _BadInput(f"{what} must be {HASH_HEX_CHARS} hexadecimal characters, got {text!r}")
    return bytes.fromhex(text)


def signer_bid(public_key: bytes) -> str:
    """The BID of a tx's signer; "" for a governance tx (signed by validators, no signer)."""
    return bid_from_public_key(public_key) if public_key else ""


def tx_subject(body: pb.TxBody) -> str:
    """The identifier or prefix a tx acts on."""
    op = body.WhichOneof("op")
    if op is None:
        return ""
    message = getattr(body, op)
    for field in ("identifier", "prefix"):
        if field in message.DESCRIPTOR.fields_by_name:
            return str(getattr(message, field))
    return ""


def tx_summary(signed: pb.SignedTx, hash_fn: HashFunction) -> dict[str, Any]:
    body = decode_body(signed.body)
    return {
        "id": tx_id(signed, hash_fn).hex(),
        "op": body.WhichOneof("op") or "",
        "signer": signer_bid(body.signer),
        "subject": tx_subject(body),
    }


def header_json(header: pb.BlockHeader, names: dict[bytes, str]) -> dict[str, Any]:
    return {
        **header_view(header),  # the fields as a proof bundle shows them
        "time": iso_time(header.time_ms),
        "proposer_name": names.get(header.proposer, ""),
    }


def certificate_json(
    certificate: pb.CommitCertificate | None, names: dict[bytes, str]
) -> dict[str, Any] | None:
    if certificate is None:
        return None
    return {
        "height": certificate.height,
        "round": certificate.round,
        "block_hash": certificate.block_hash.hex(),
        "signers": [
            {"name": names.get(sig.validator, ""), "public_key": sig.validator.hex()}
            for sig in certificate.signatures
        ],
    }


def block_json(
    block: pb.Block,
    certificate: pb.CommitCertificate | None,
    names: dict[bytes, str],
    hash_fn: HashFunction,
) -> dict[str, Any]:
    header = pb.BlockHeader.FromString(block.header)
    return {
        "height": header.height,
        "hash": block_hash(block.header, hash_fn).hex(),
        "header": header_json(header, names),
        "txs": [tx_summary(signed, hash_fn) for signed in block.txs],
        "certificate": certificate_json(certificate, names),
        "last_commit": certificate_json(block.last_commit, names)
        if block.HasField("last_commit")
        else None,
    }


def block_summary_json(
    block: pb.Block, names: dict[bytes, str], hash_fn: HashFunction
) -> dict[str, Any]:
    header = pb.BlockHeader.FromString(block.header)
    return {
        "height": header.height,
        "hash": block_hash(block.header, hash_fn).hex(),
        "time_ms": header.time_ms,
        "time": iso_time(header.time_ms),
        "tx_count": len(block.txs),
        "proposer_name": names.get(header.proposer, ""),
    }


# ---------------------------------------------------------------------------- the routes


class Explorer:
    """The explorer's routes on one gateway; `feed.block_committed` is the commit hook."""

    def __init__(
        self,
        ledger: Ledger,
        status: StatusSource,
        readiness: Callable[[], ReadyState],
        scans: Executor,
        digital_links: DigitalLinks,
        on_limit_hit: Callable[[str], None],
    ) -> None:
        self._ledger = ledger
        self._status = status
        self._readiness = readiness
        self._scans = scans
        self._digital_links = digital_links
        self._names = {v.public_key: v.name for v in ledger.genesis.validators}
        self.feed = BlockFeed(ledger.height, on_limit_hit)

    def add_routes(self, app: web.Application) -> None:
        routes = {
            "/api/status": self._status_answer,
            "/api/blocks": self._blocks,
            # any character (a newline, an encoded "/" too): malformed input is answered
            # with a message, not left to aiohttp's plain-text 404
            f"/api/blocks/{{ref:{ANY}}}": self._block,
            f"/api/txs/{{id:{ANY}}}": self._tx,
            f"/api/prefixes/{{prefix:{ANY}}}": self._prefix,
            f"/api/accounts/{{bid:{ANY}}}": self._account,
            f"/api/history/{{identifier:{ANY}}}": self._history,
            "/api/search": self._search,
            "/api/genesis": self._genesis,
        }
        for path, read in routes.items():
            app.router.add_get(path, _answering(read))
        app.router.add_get("/api/events", self.feed.stream)
        app.router.add_get("/", self._page)
        app.router.add_get(f"/explorer/{{name:{ANY}}}", self._static)
        app.on_shutdown.append(self._shutdown)

    async def _shutdown(self, app: web.Application) -> None:
        self.feed.close()

    async def _in_scans(self, read: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._scans, read)

    # ---- the page ----

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return _file("index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            return _json({"message": f"no file {name!r} in the explorer"}, 404)
        return _file(name)

    # ---- the network ----

    async def _status_answer(self, request: web.Request) -> dict[str, Any]:
        ledger = self._ledger
        height = ledger.height
        header = ledger.last_header()
        last_signed = await self._in_scans(lambda: self._last_signed(height))
        state = self._readiness()
        return {
            "chain_id": ledger.chain_id,
            "node": self._status.node_name(),
            "role": self._status.role(),
            "height": height,
            "last_block": None
            if header is None
            else {
                "hash": ledger.last_block_hash.hex(),
                "time_ms": header.time_ms,
                "time": iso_time(header.time_ms),
            },
            "state_root": ledger.state_root.hex(),
            "genesis_hash": ledger.genesis.genesis_hash.hex(),
            "validators": [
                {
                    "name": v.name,
                    "public_key": v.public_key.hex(),
                    "bid": bid_from_public_key(v.public_key),
                    "last_signed_height": last_signed.get(v.public_key),
                }
                for v in ledger.genesis.validators
            ],
            "signed_scan_blocks": MAX_SIGNED_SCAN_BLOCKS,
            "peers": [
                {
                    "name": peer.name,
                    "address": peer.address,
                    "public_key": peer.validator.hex(),
                    "connected": peer.connected,
                    "height": peer.height,
                }
                for peer in self._status.peers()
            ],
            "event_streams": {"open": self.feed.subscribers, "max": MAX_SSE_SUBSCRIBERS},
            "syncing": self._status.syncing(),
            "ready": state.ready,
            "ready_reason": state.reason,
        }

    def _last_signed(self, height: int) -> dict[bytes, int]:
        """The last height each validator signed a commit certificate for, walking back
        at most MAX_SIGNED_SCAN_BLOCKS blocks. In the scan thread."""
        wanted = set(self._names)
        found: dict[bytes, int] = {}
        lowest = max(1, height - MAX_SIGNED_SCAN_BLOCKS + 1)
        for at in range(height, lowest - 1, -1):
            certificate = self._ledger.commit_certificate(at)
            for sig in certificate.signatures if certificate is not None else ():
                found.setdefault(sig.validator, at)
            if wanted <= found.keys():
                break
        return found

    async def _genesis(self, request: web.Request) -> dict[str, Any]:
        return genesis_to_dict(self._ledger.genesis)

    # ---- blocks and txs ----

    async def _blocks(self, request: web.Request) -> dict[str, Any]:
        height = self._ledger.height
        before = whole_number("before", request.query.get("before", ""), height + 1, 1, 2**63)
        limit = page_size(request.query)
        top = min(before - 1, height)
        bottom = max(1, top - limit + 1)

        def read() -> list[dict[str, Any]]:
            return [
                block_summary_json(self._ledger.get_block(at)[0], self._names, self._ledger.hash_fn)
                for at in range(top, bottom - 1, -1)
            ]

        summaries = await self._in_scans(read) if top >= 1 else []
        return {
            "height": height,
            "blocks": summaries,
            "next_before": bottom if top >= 1 and bottom > 1 else None,
        }

    async def _block(self, request: web.Request) -> dict[str, Any]:
        ref = request.match_info["ref"]
        if ref.isascii() and ref.isdigit() and len(ref) < HASH_HEX_CHARS:
            height = whole_number("height", ref, 0, 1, 2**63)
        else:
            height = self._ledger.block_height(hash_bytes(ref, "a block hash"))
        block, _, certificate = self._ledger.get_block(height)
        return block_json(block, certificate, self._names, self._ledger.hash_fn)

    async def _tx(self, request: web.Request) -> dict[str, Any]:
        the_id = hash_bytes(request.match_info["id"], "a tx id")
        signed, height, index = self._ledger.get_tx(the_id)
        block, _, _ = self._ledger.get_block(height)
        header = pb.BlockHeader.FromString(block.header)
        body = decode_body(signed.body)
        op = body.WhichOneof("op") or ""
        return {
            **tx_summary(signed, self._ledger.hash_fn),
            "height": height,
            "index": index,
            "block_hash": block_hash(block.header, self._ledger.hash_fn).hex(),
            "time_ms": header.time_ms,
            "time": iso_time(header.time_ms),
            "chain_id": body.chain_id,
            "signer_key": body.signer.hex(),
            "expires_at_ms": body.expires_at_ms,
            "body": MessageToDict(getattr(body, op), preserving_proto_field_name=True)
            if op
            else {},
        }

    # ---- names ----

    async def _prefix(self, request: web.Request) -> dict[str, Any]:
        prefix = request.match_info["prefix"]
        limit = page_size(request.query)
        after = query_text(request.query, "after")

        def read() -> dict[str, Any]:
            record, children = self._ledger.prefix_info(prefix)
            records, next_token = self._ledger.list_identifiers(prefix, limit, after)
            return {
                "prefix": record.prefix,
                "owner": record.owner,
                "registrars": list(record.registrars),
                "created_height": record.created_height,
                "updated_height": record.updated_height,
                "children": children,
                "identifiers": [
                    {"identifier": r.identifier, "status": pb.RecordStatus.Name(r.status)}
                    for r in records
                ],
                "next_after": next_token or None,
            }

        return await self._in_scans(read)

    async def _account(self, request: web.Request) -> dict[str, Any]:
        bid = parse_bid(request.match_info["bid"]).text
        limit = page_size(request.query)
        prefixes_after = query_text(request.query, "prefixes_after")
        identifiers_after = query_text(request.query, "identifiers_after")

        def read() -> dict[str, Any]:
            prefixes, next_prefix = self._ledger.owned_by(
                bid, schema.OWNED_PREFIX, limit, prefixes_after
            )
            keys, next_record = self._ledger.owned_by(
                bid, schema.OWNED_RECORD, limit, identifiers_after
            )
            return {
                "bid": bid,
                "prefixes": [self._ledger.prefix_info(key)[0].prefix for key in prefixes],
                "next_prefixes_after": next_prefix or None,
                "identifiers": [self._ledger.resolve(key).identifier for key in keys],
                "next_identifiers_after": next_record or None,
            }

        return await self._in_scans(read)

    async def _history(self, request: web.Request) -> dict[str, Any]:
        identifier = request.match_info["identifier"]
        limit = whole_number(
            "limit",
            request.query.get("limit", ""),
            MAX_EXPLORER_HISTORY_ENTRIES,
            1,
            MAX_EXPLORER_HISTORY_ENTRIES,
        )
        entries = await self._in_scans(lambda: self._ledger.history(identifier, limit))
        record = entries[-1].record
        return {
            "identifier": record.identifier,
            "owner": record.owner,
            "status": pb.RecordStatus.Name(record.status),
            "revoke_reason": record.revoke_reason,
            "created_height": record.created_height,
            "updated_height": record.updated_height,
            "entries": [
                {
                    "height": entry.height,
                    "time_ms": entry.time_ms,
                    "time": iso_time(entry.time_ms),
                    "tx_id": entry.tx_id.hex(),
                    "op": entry.operation,
                    "signer": entry.signer,
                }
                for entry in reversed(entries)
            ],
        }

    # ---- search ----

    async def _search(self, request: web.Request) -> dict[str, Any]:
        text = query_text(request.query, "q").strip()
        if not text:
            raise _BadInput("q is required: an identifier, a Digital Link URL, a GTIN, a BID, "
                            "a block height or hash, a tx id or a prefix")  # fmt: skip
        kind, target = await self._in_scans(lambda: self._find(text))
        return {"query": text, "kind": kind, "target": target}

    def _find(self, text: str) -> tuple[str, str]:
        """(the view, what it shows) for the search box's text. In the scan thread."""
        if text.lower().startswith(("http://", "https://")):
            return "identifier", self._digital_links.identifier_of(parse_digital_link(text))
        if text.startswith("did:"):
            return "account", parse_bid(text).text
        if text.isascii() and text.isdigit():
            return self._find_number(text)
        if len(text) == HASH_HEX_CHARS and all(ch in "0123456789abcdefABCDEF" for ch in text):
            return self._find_hash(bytes.fromhex(text))
        if "/" in text:
            return "identifier", self._ledger.resolve(text).identifier
        return "prefix", self._ledger.prefix_info(text)[0].prefix

    def _find_number(self, digits: str) -> tuple[str, str]:
        height = int(digits)
        if is_valid_gtin(digits) and len(digits) >= 8:
            link = parse_digital_link_path(f"01/{parse_gtin(digits).gtin14}")
            try:
                return "identifier", self._digital_links.identifier_of(link)
            except SparkError:
                if not 1 <= height <= self._ledger.height:
                    raise
        if 1 <= height <= self._ledger.height:
            return "block", str(height)
        try:
            return "prefix", self._ledger.prefix_info(digits)[0].prefix
        except SparkError as error:
            if error.code not in (ErrorCode.NOT_FOUND, ErrorCode.INVALID_PREFIX):
                raise
        raise SparkError(
            ErrorCode.NOT_FOUND,
            f"nothing matches {digits}: no block at that height (the chain has "
            f"{self._ledger.height}), not a registered GTIN, not a prefix",
        )

    def _find_hash(self, raw: bytes) -> tuple[str, str]:
        try:
            return "block", str(self._ledger.block_height(raw))
        except SparkError as error:
            if error.code != ErrorCode.NOT_FOUND:
                raise
        try:
            self._ledger.get_tx(raw)
        except SparkError as error:
            if error.code != ErrorCode.NOT_FOUND:
                raise
            raise SparkError(
                ErrorCode.NOT_FOUND, f"no block and no committed tx has the hash {raw.hex()}"
            ) from None
        return "tx", raw.hex()


def _answering(
    read: Callable[[web.Request], Awaitable[dict[str, Any]]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler answering what `read` returns as JSON, or `{"message"}` for what it raised."""

    async def handler(request: web.Request) -> web.Response:
        try:
            return _json(await read(request), 200)
        except _BadInput as bad:
            return _json({"message": str(bad)}, 400)
        except SparkError as error:
            return _json({"message": error.message}, _status_of(error.code))
        except Exception:
            log.exception("explorer_read_failed", extra={"path": request.path[:200]})
            return _json({"message": "server error"}, 500)

    return handler


def _status_of(code: ErrorCode) -> int:
    if code == ErrorCode.NOT_FOUND:
        return 404
    if code == ErrorCode.UNAVAILABLE:
        return 503
    if code in (ErrorCode.STORAGE_CORRUPT, ErrorCode.INTERNAL):
        return 500
    return 400  # every other code names something wrong with the input


def _json(answer: dict[str, Any], status: int) -> web.Response:
    text = json.dumps(answer, ensure_ascii=False)
    return web.Response(text=text, status=status, content_type=JSON_TYPE)


def _file(name: str) -> web.StreamResponse:
    path = STATIC_DIR / name
    return web.Response(
        body=path.read_bytes(),
        content_type=STATIC_FILES[name],
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )
