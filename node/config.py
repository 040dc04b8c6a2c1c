"""A node home's config.toml, read into a frozen NodeConfig (DESIGN §8).

Unknown sections and keys are errors, not warnings: a misspelt `propose_timout_ms` would
otherwise run silently with the default, and nothing may start half-configured. Every
error names the file and the field ("config.toml: api.listen: ...").

tomllib only reads TOML, so writing uses `format_toml`, a formatter for the little TOML we
need (tables of strings, integers, booleans and lists of strings).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparkchain.identifiers import limits
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import ascii_upper, parse_prefix
from sparkchain.ledger.smt_prune import MIN_KEEP_HEIGHTS

ROLES = ("validator", "observer")
LOG_LEVELS = ("debug", "info", "warning", "error")
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PUBLIC_KEY_HEX = re.compile(r"[0-9A-Fa-f]{64}")
DEFAULT_P2P_TLS_CA = "keys/tls-ca.pem"
DEFAULT_P2P_TLS_CERT = "keys/tls-cert.pem"
DEFAULT_P2P_TLS_KEY = "keys/tls-key.pem"
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@dataclass(frozen=True, slots=True)
class NodeSection:
    name: str
    role: str  # "validator" | "observer"
    log_level: str = "info"

    @property
    def is_validator(self) -> bool:
        return self.role == "validator"


@dataclass(frozen=True, slots=True)
class ApiConfig:
    listen: str  # host:port of the public gRPC API
    # connections held at once, at most (fewer when the open-files limit is low)
    max_connections: int = limits.DEFAULT_API_MAX_CONNECTIONS
    # TLS on the API (server side only) when both are set: PEM files, relative to the home
    # unless absolute; "" serves plaintext
    tls_cert: str = ""
    tls_key: str = ""
    # on an observer: validators' API addresses that clients' writes are forwarded to, in
    # order of preference (an observer never admits a tx itself: DESIGN §11); empty, it
    # refuses writes and says where to send them
    submit_to: tuple[str, ...] = ()
    # the CA that certifies those APIs when they serve TLS; "" dials them in plaintext
    submit_tls_ca: str = ""


@dataclass(frozen=True, slots=True)
class HttpConfig:
    # host:port of the HTTP gateway (Handle REST, /healthz, /readyz); "" turns it off
    listen: str = ""
    # connections served at once; beyond, a request is answered 503 and its connection closed
    max_connections: int = limits.DEFAULT_HTTP_MAX_CONNECTIONS
    # HTTPS when both are set: PEM files, relative to the home unless absolute, as [api]'s
    tls_cert: str = ""
    tls_key: str = ""


@dataclass(frozen=True, slots=True)
class Gs1Config:
    # the Handle prefixes the GS1 Digital Link resolver searches, in order (DESIGN §10);
    # none: the resolver answers 404 saying so
    prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class P2pConfig:
    listen: str  # host:port of the peer-to-peer gRPC server
    peers: tuple[str, ...] = ()  # every other node's p2p address
    # the observers' public keys (hex) this node links with; other observers are refused
    observers: tuple[str, ...] = ()
    # mutual TLS on the peer port (node/tls.py): files, relative to the node home unless
    # absolute. Peer links are TLS only; a node whose files are missing does not start.
    tls_ca: str = DEFAULT_P2P_TLS_CA  # the network CA's certificate
    tls_cert: str = DEFAULT_P2P_TLS_CERT  # this node's certificate, bound to its node key
    tls_key: str = DEFAULT_P2P_TLS_KEY  # its TLS private key (mode 0600)


@dataclass(frozen=True, slots=True)
class ConsensusConfig:
    propose_timeout_ms: int = limits.DEFAULT_PROPOSE_TIMEOUT_MS
    prevote_timeout_ms: int = limits.DEFAULT_PREVOTE_TIMEOUT_MS
    precommit_timeout_ms: int = limits.DEFAULT_PRECOMMIT_TIMEOUT_MS
    timeout_delta_ms: int = limits.DEFAULT_TIMEOUT_DELTA_MS  # added per round
    block_interval_ms: int = limits.DEFAULT_BLOCK_INTERVAL_MS  # min gap between blocks
    empty_block_interval_ms: int = limits.DEFAULT_EMPTY_BLOCK_INTERVAL_MS
    max_block_txs: int = limits.DEFAULT_MAX_BLOCK_TXS
    max_block_bytes: int = limits.DEFAULT_MAX_BLOCK_BYTES


@dataclass(frozen=True, slots=True)
class MempoolConfig:
    max_txs: int = limits.DEFAULT_MEMPOOL_MAX_TXS
    max_bytes: int = limits.DEFAULT_MEMPOOL_MAX_BYTES


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    # prove the state of the last K heights only, deleting older state tree versions
    # (node/pruning.py); 0 keeps every height. Blocks and history are always kept.
    keep_heights: int = 0


@dataclass(frozen=True, slots=True)
class StorageConfig:
    block_cache_mb: int = limits.DEFAULT_BLOCK_CACHE_MB  # LevelDB's block cache
    tree_cache_nodes: int = limits.DEFAULT_TREE_CACHE_NODES  # the state tree's upper levels

    @property
    def block_cache_bytes(self) -> int:
        return self.block_cache_mb * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SnapshotsConfig:
    # a state snapshot every `interval` blocks (node/snapshots.py); 0 takes none
    interval: int = limits.DEFAULT_SNAPSHOT_INTERVAL_BLOCKS
    keep: int = limits.DEFAULT_SNAPSHOTS_KEPT  # the newest kept on disk
    # a new node (empty ledger) restores a peer's snapshot before it block-syncs the rest,
    # as `spark node start --state-sync` does (node/state_sync.py)
    state_sync: bool = False


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node: NodeSection
    api: ApiConfig
    p2p: P2pConfig
    consensus: ConsensusConfig = field(default_factory=ConsensusConfig)
    mempool: MempoolConfig = field(default_factory=MempoolConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    gs1: Gs1Config = field(default_factory=Gs1Config)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    snapshots: SnapshotsConfig = field(default_factory=SnapshotsConfig)


# ---------------------------------------------------------------------------- addresses


def split_address(text: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port); ValueError saying what is wrong."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 host in brackets, e.g. [::1]:7100")
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: port must be a number from 1 to 65535")
    return host, int(port_text)


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def dial_address(listen: str) -> str:
    """The address a local client dials to reach a server listening on `listen`."""
    host, port = split_address(listen)
    return join_address(_WILDCARD_HOSTS.get(host, host), port)


# ---------------------------------------------------------------------------- reading


def load_config(path: Path) -> NodeConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SparkError(ErrorCode.INVALID_CONFIG, f"{path}: file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SparkError(ErrorCode.INVALID_CONFIG, f"{path}: cannot read: {exc}") from exc
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "config.toml") -> NodeConfig:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SparkError(ErrorCode.INVALID_CONFIG, f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib recurses once per nested array or inline table
        raise SparkError(
            ErrorCode.INVALID_CONFIG, f"{source}: not valid TOML: nested too deeply"
        ) from None
    except ValueError as exc:
        # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise SparkError(ErrorCode.INVALID_CONFIG, f"{source}: not valid TOML: {exc}") from None
    known = {
        "node",
        "api",
        "p2p",
        "consensus",
        "mempool",
        "http",
        "gs1",
        "ledger",
        "storage",
        "snapshots",
    }
    for name, table in document.items():
        if name not in known:
            raise _error(source, name, f"unknown section (known: {', '.join(sorted(known))})")
        if not isinstance(table, dict):
            raise _error(source, name, "must be a [table]")

    node = _Section(source, "node", document)
    name = node.string("name")
    if not NODE_NAME.fullmatch(name):
        raise node.error(
            "name", "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    node_section = NodeSection(
        name=name,
        role=node.choice("role", ROLES),
        log_level=node.choice("log_level", LOG_LEVELS, default="info"),
    )
    node.finish()

    api = _Section(source, "api", document)
    api_config = ApiConfig(
        listen=api.address("listen"),
        max_connections=api.integer(
            "max_connections",
            limits.DEFAULT_API_MAX_CONNECTIONS,
            maximum=limits.MAX_API_CONNECTIONS,
        ),
        tls_cert=api.string("tls_cert", ""),
        tls_key=api.string("tls_key", ""),
        submit_to=api.addresses("submit_to"),
        submit_tls_ca=api.string("submit_tls_ca", ""),
    )
    api.finish()
    if api_config.submit_to and node_section.is_validator:
        raise _error(
            source, "api.submit_to", "only an observer forwards writes; a validator admits them"
        )
    if api_config.submit_tls_ca and not api_config.submit_to:
        raise _error(source, "api.submit_tls_ca", "set without api.submit_to")
    _check_tls_pair(source, "api", api_config.tls_cert, api_config.tls_key)

    p2p = _Section(source, "p2p", document)
    p2p_config = P2pConfig(
        listen=p2p.address("listen"),
        peers=p2p.addresses("peers"),
        observers=p2p.public_keys("observers"),
        tls_ca=p2p.path("tls_ca", DEFAULT_P2P_TLS_CA),
        tls_cert=p2p.path("tls_cert", DEFAULT_P2P_TLS_CERT),
        tls_key=p2p.path("tls_key", DEFAULT_P2P_TLS_KEY),
    )
    p2p.finish()
    if p2p_config.listen in p2p_config.peers:
        raise _error(source, "p2p.peers", f"lists this node's own address {p2p_config.listen}")
    if api_config.listen == p2p_config.listen:
        raise _error(source, "p2p.listen", "must differ from api.listen")

    consensus = _Section(source, "consensus", document)
    defaults = ConsensusConfig()
    consensus_config = ConsensusConfig(
        **{
            f.name: consensus.integer(
                f.name,
                getattr(defaults, f.name),
                # 0 means "no minimum gap" between blocks; every other value must be > 0
                minimum=0 if f.name == "block_interval_ms" else 1,
                maximum=_CONSENSUS_MAXIMA[f.name],
            )
            for f in dataclasses.fields(ConsensusConfig)
        }
    )
    consensus.finish()

    mempool = _Section(source, "mempool", document)
    mempool_config = MempoolConfig(
        max_txs=mempool.integer(
            "max_txs", limits.DEFAULT_MEMPOOL_MAX_TXS, maximum=limits.MAX_MEMPOOL_TXS
        ),
        max_bytes=mempool.integer(
            "max_bytes", limits.DEFAULT_MEMPOOL_MAX_BYTES, maximum=limits.MAX_MEMPOOL_BYTES
        ),
    )
    mempool.finish()

    http = _Section(source, "http", document)
    http_listen = http.string("listen", "")
    http_config = HttpConfig(
        listen=http.address("listen") if http_listen else "",
        max_connections=http.integer(
            "max_connections",
            limits.DEFAULT_HTTP_MAX_CONNECTIONS,
            maximum=limits.MAX_HTTP_CONNECTIONS,
        ),
        tls_cert=http.string("tls_cert", ""),
        tls_key=http.string("tls_key", ""),
    )
    http.finish()
    _check_tls_pair(source, "http", http_config.tls_cert, http_config.tls_key)
    if http_config.listen in (api_config.listen, p2p_config.listen):
        raise _error(source, "http.listen", "must differ from api.listen and p2p.listen")

    gs1 = _Section(source, "gs1", document)
    gs1_config = Gs1Config(prefixes=gs1.prefixes("prefixes"))
    gs1.finish()

    ledger = _Section(source, "ledger", document)
    keep_heights = ledger.integer(
        "keep_heights", 0, minimum=0, maximum=limits.MAX_LEDGER_KEEP_HEIGHTS
    )
    if 0 < keep_heights < MIN_KEEP_HEIGHTS:
        raise ledger.error(
            "keep_heights",
            f"must be 0 (keep every height) or at least {MIN_KEEP_HEIGHTS}, got {keep_heights}",
        )
    ledger.finish()
    storage = _Section(source, "storage", document)
    storage_config = StorageConfig(
        block_cache_mb=storage.integer(
            "block_cache_mb", limits.DEFAULT_BLOCK_CACHE_MB, maximum=limits.MAX_BLOCK_CACHE_MB
        ),
        tree_cache_nodes=storage.integer(
            "tree_cache_nodes",
            limits.DEFAULT_TREE_CACHE_NODES,
            maximum=limits.MAX_TREE_CACHE_NODES,
        ),
    )
    storage.finish()
    snapshots = _Section(source, "snapshots", document)
    snapshots_config = SnapshotsConfig(
        interval=snapshots.integer(
            "interval",
            limits.DEFAULT_SNAPSHOT_INTERVAL_BLOCKS,
            minimum=0,
            maximum=limits.MAX_SNAPSHOT_INTERVAL_BLOCKS,
        ),
        keep=snapshots.integer(
            "keep", limits.DEFAULT_SNAPSHOTS_KEPT, maximum=limits.MAX_SNAPSHOTS_KEPT
        ),
        state_sync=snapshots.boolean("state_sync", False),
    )
    snapshots.finish()

    return NodeConfig(
        node_section,
        api_config,
        p2p_config,
        consensus_config,
        mempool_config,
        http_config,
        gs1_config,
        LedgerConfig(keep_heights),
        storage_config,
        snapshots_config,
    )


# the most each [consensus] key accepts (identifiers/limits.py)
_CONSENSUS_MAXIMA: dict[str, int] = {
    "propose_timeout_ms": limits.MAX_CONSENSUS_TIMEOUT_MS,
    "prevote_timeout_ms": limits.MAX_CONSENSUS_TIMEOUT_MS,
    "precommit_timeout_ms": limits.MAX_CONSENSUS_TIMEOUT_MS,
    "timeout_delta_ms": limits.MAX_CONSENSUS_TIMEOUT_MS,
    "block_interval_ms": limits.MAX_BLOCK_INTERVAL_MS,
    "empty_block_interval_ms": limits.MAX_EMPTY_BLOCK_INTERVAL_MS,
    "max_block_txs": limits.MAX_BLOCK_TXS,
    "max_block_bytes": limits.MAX_BLOCK_BYTES,
}


def _error(source: str, where: str, problem: str) -> SparkError:
    return SparkError(ErrorCode.INVALID_CONFIG, f"{source}: {where}: {problem}")


def _check_tls_pair(source: str, section: str, cert: str, key: str) -> None:
    if bool(cert) != bool(key):
        missing = "tls_key" if cert else "tls_cert"
        raise _error(
            source, f"{section}.{missing}", "missing: set both tls_cert and tls_key, or neither"
        )


_REQUIRED: Any = object()


class _Section:
    """Reads one table, remembering which keys were used so leftovers are reported."""

    def __init__(self, source: str, name: str, document: dict[str, Any]) -> None:
        self.source = source
        self.name = name
        self.table: dict[str, Any] = document.get(name, {})
        self.used: set[str] = set()

    def error(self, key: str, problem: str) -> SparkError:
        return _error(self.source, f"{self.name}.{key}", problem)

    def _get(self, key: str, default: object) -> object:
        self.used.add(key)
        if key in self.table:
            return self.table[key]
        if default is _REQUIRED:
            raise self.error(key, "missing")
        return default

    def string(self, key: str, default: Any = _REQUIRED) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {_toml_type(value)}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _REQUIRED) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise self.error(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def integer(self, key: str, default: int, *, minimum: int = 1, maximum: int) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {_toml_type(value)}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {_toml_type(value)}")
        return value

    def path(self, key: str, default: str) -> str:
        value = self.string(key, default)
        if not value or "\x00" in value:
            raise self.error(key, "must be a file path")
        return value

    def address(self, key: str, default: Any = _REQUIRED) -> str:
        return self._check_address(key, self.string(key, default))

    def _check_address(self, where: str, value: str) -> str:
        try:
            split_address(value)
        except ValueError as exc:
            raise self.error(where, str(exc)) from None
        return value

    def addresses(self, key: str) -> tuple[str, ...]:
        value = self._get(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"must be a list of host:port strings, got {_toml_type(value)}")
        seen: set[str] = set()
        for i, item in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(item, str):
                raise self.error(where, f"must be a string, got {_toml_type(item)}")
            self._check_address(where, item)
            if item in seen:
                raise self.error(where, f"{item} is listed twice")
            seen.add(item)
        return tuple(value)

    def public_keys(self, key: str) -> tuple[str, ...]:
        """A list of Ed25519 public keys, each 64 hex digits, kept in lower case."""
        value = self._get(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"must be a list of public keys (hex), got {_toml_type(value)}")
        keys: list[str] = []
        for i, item in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(item, str):
                raise self.error(where, f"must be a string, got {_toml_type(item)}")
            if not PUBLIC_KEY_HEX.fullmatch(item):
                raise self.error(
                    where, f"{item!r} is not a public key: 64 hex digits (32 bytes) expected"
                )
            if item.lower() in keys:
                raise self.error(where, f"{item} is listed twice")
            keys.append(item.lower())
        return tuple(keys)

    def prefixes(self, key: str) -> tuple[str, ...]:
        """A list of Handle prefixes (`88.608`), each valid and listed once (ASCII case
        ignored, as in lookups)."""
        value = self._get(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"must be a list of prefixes, got {_toml_type(value)}")
        seen: set[str] = set()
        for i, item in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(item, str):
                raise self.error(where, f"must be a string, got {_toml_type(item)}")
            try:
                parse_prefix(item)
            except SparkError as exc:
                raise self.error(where, exc.message) from None
            if ascii_upper(item) in seen:
                raise self.error(where, f"{item} is listed twice")
            seen.add(ascii_upper(item))
        return tuple(value)

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


# ---------------------------------------------------------------------------- writing

TomlValue = str | int | bool | list[str]


def config_to_tables(config: NodeConfig) -> dict[str, dict[str, TomlValue]]:
    tables: dict[str, dict[str, TomlValue]] = {}
    for section in dataclasses.fields(config):
        values = dataclasses.asdict(getattr(config, section.name))
        tables[section.name] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in values.items()
        }
    return tables


def config_to_toml(config: NodeConfig) -> str:
    return format_toml(config_to_tables(config))


def write_config(path: Path, config: NodeConfig) -> None:
    """Write atomically (temp file + rename): a crash never leaves half a config."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(config_to_toml(config), encoding="utf-8")
    os.replace(temporary, path)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def format_toml(tables: dict[str, dict[str, TomlValue]]) -> str:
    """TOML text for tables of scalars and string lists (what config.toml holds)."""
    blocks = []
    for table, values in tables.items():
        lines = [f"[{_key(table)}]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in values.items()]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _string(text: str) -> str:
    # TOML basic strings forbid raw control characters (except tab) and DEL
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
