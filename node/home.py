"""Node homes on disk: the layout of one home, and writing new ones (`spark init`, the
development chain, local testnets).

One home:  config.toml, genesis.json, keys/validator.pem (validators) or keys/node.pem
(observers; the key that signs peer handshakes), the peer port's TLS files
keys/tls-ca.pem (the network CA), keys/tls-cert.pem and keys/tls-key.pem (this node's
certificate, bound to its node key, and its TLS key; node/tls.py), data/ledger/,
data/last_signed, data/acknowledged_height, node.log, node.pid.
A testnet: keys/root.pem (the root authority), keys/tls-ca.pem and keys/tls-ca-key.pem
(the testnet's TLS CA, which issued every node's certificate) and one home per node,
node1..nodeN (validators) and observer1..observerM, all with the same genesis.json.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import secrets
import shutil
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sparkchain.identifiers import limits
from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.hashing import HashAlgorithm
from sparkchain.identifiers.keys import SigningKey
from sparkchain.ledger.genesis import Genesis, genesis_to_json, make_genesis, parse_genesis
from sparkchain.node import keystore
from sparkchain.node.config import (
    DEFAULT_P2P_TLS_CA,
    DEFAULT_P2P_TLS_CERT,
    DEFAULT_P2P_TLS_KEY,
    ApiConfig,
    Gs1Config,
    HttpConfig,
    NodeConfig,
    NodeSection,
    P2pConfig,
    join_address,
    load_config,
    write_config,
)
from sparkchain.node.mempool import wall_clock_ms
from sparkchain.node.tls import PeerTls, TlsAuthority, issue_node_certificate, new_authority

DEFAULT_CHAIN_ID = "sparkchain-local"
DEV_CHAIN_ID = "sparkchain-dev"
TESTNET_CHAIN_ID = "sparkchain-testnet"  # the stem: each testnet adds random hex to it
DEV_ROOT_PREFIX = "88"
# the Handle prefixes the GS1 Digital Link resolver of a written home searches (DESIGN §10)
DEFAULT_GS1_PREFIXES = ("88.608",)
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class NodeHome:
    """Where each file of one node lives. Creating a NodeHome touches nothing on disk."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def genesis_path(self) -> Path:
        return self.root / "genesis.json"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def validator_key_path(self) -> Path:
        return self.keys_dir / "validator.pem"

    @property
    def observer_key_path(self) -> Path:
        return self.keys_dir / "node.pem"

    @property
    def root_key_path(self) -> Path:
        return self.keys_dir / "root.pem"  # only in homes written by `spark init`

    @property
    def tls_ca_key_path(self) -> Path:
        # only in homes written by `spark init`: issues certificates for further nodes
        return self.keys_dir / "tls-ca-key.pem"

    def file(self, configured: str) -> Path:
        """A path from config.toml: relative to the home unless absolute."""
        return self.root / Path(configured).expanduser()

    def peer_tls(self, config: NodeConfig | None = None) -> PeerTls:
        """The peer port's TLS files named in `[p2p]`; an error names the missing one."""
        p2p = (config or self.config()).p2p
        return PeerTls(
            ca_pem=self._read_tls_file(p2p.tls_ca, "p2p.tls_ca"),
            cert_pem=self._read_tls_file(p2p.tls_cert, "p2p.tls_cert"),
            key_pem=keystore.read_private_file(self.file(p2p.tls_key)),
        )

    def api_tls(self, config: NodeConfig | None = None) -> tuple[bytes, bytes] | None:
        """The public API's certificate chain and key (PEM), or None to serve plaintext."""
        api = (config or self.config()).api
        if not api.tls_cert:
            return None
        cert = self._read_tls_file(api.tls_cert, "api.tls_cert", "the API's TLS files")
        return cert, keystore.read_private_file(self.file(api.tls_key))

    def submit_tls_ca(self, config: NodeConfig | None = None) -> bytes | None:
        """The CA certifying the validators' APIs an observer forwards writes to, or None."""
        api = (config or self.config()).api
        if not api.submit_tls_ca:
            return None
        return self._read_tls_file(
            api.submit_tls_ca, "api.submit_tls_ca", "forwarding writes to TLS APIs needs it"
        )

    def http_tls(self, config: NodeConfig | None = None) -> ssl.SSLContext | None:
        """The gateway's server TLS context (TLS 1.2 and newer), or None to serve plain HTTP."""
        http = (config or self.config()).http
        if not http.tls_cert:
            return None
        cert = self.file(http.tls_cert)
        key = self.file(http.tls_key)
        self._read_tls_file(http.tls_cert, "http.tls_cert", "the gateway's TLS files")
        keystore.read_private_file(key)  # refuses a key file open to others
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, ValueError) as exc:
            raise SparkError(
                ErrorCode.INVALID_CONFIG,
                f"{self.config_path}: http.tls_cert/tls_key: {cert} and {key} are not a PEM "
                f"certificate chain and its private key: {exc}",
            ) from None
        return context

    def _read_tls_file(
        self,
        configured: str,
        field: str,
        needed_by: str = "peer links need TLS files; `spark init` writes them",
    ) -> bytes:
        path = self.file(configured)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SparkError(
                ErrorCode.INVALID_CONFIG,
                f"{self.config_path}: {field}: cannot read {path}: {exc.strerror or exc} "
                f"({needed_by})",
            ) from None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def ledger_dir(self) -> Path:
        return self.data_dir / "ledger"

    @property
    def snapshots_dir(self) -> Path:
        """The state snapshots this node took or began from (node/snapshots.py)."""
        return self.data_dir / "snapshots"

    @property
    def last_signed_path(self) -> Path:
        return self.data_dir / "last_signed"

    @property
    def acknowledged_height_path(self) -> Path:
        return self.data_dir / "acknowledged_height"

    @property
    def log_path(self) -> Path:
        return self.root / "node.log"

    @property
    def pid_path(self) -> Path:
        return self.root / "node.pid"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def config(self) -> NodeConfig:
        return load_config(self.config_path)

    def genesis(self) -> Genesis:
        return load_genesis(self.genesis_path)

    def node_key_path(self, config: NodeConfig | None = None) -> Path:
        """The key this node signs with: its validator key, or an observer's node key."""
        role = (config or self.config()).node.role
        return self.validator_key_path if role == "validator" else self.observer_key_path

    def node_key(self, config: NodeConfig | None = None) -> SigningKey:
        return keystore.read_key_file(self.node_key_path(config))

    def managed_paths(self) -> list[Path]:
        """Everything `init` writes or a node creates; --force removes exactly these."""
        return [
            self.config_path,
            self.genesis_path,
            self.validator_key_path,
            self.observer_key_path,
            self.root_key_path,
            self.file(DEFAULT_P2P_TLS_CA),
            self.file(DEFAULT_P2P_TLS_CERT),
            self.file(DEFAULT_P2P_TLS_KEY),
            self.tls_ca_key_path,
            self.data_dir,
            self.log_path,
            self.pid_path,
        ]


@dataclass(frozen=True, slots=True)
class WrittenHome:
    """What an init wrote, for the CLI to print and tests to check."""

    home: NodeHome
    config: NodeConfig
    genesis: Genesis
    node_public_key: bytes
    files: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class WrittenTestnet:
    root: Path
    root_key_path: Path
    root_authority: str  # BID of the root key
    genesis: Genesis
    nodes: tuple[WrittenHome, ...]


# ---------------------------------------------------------------------------- one home


def init_home(
    directory: Path,
    chain_id: str = DEFAULT_CHAIN_ID,
    name: str = "node1",
    api_listen: str | None = None,
    p2p_listen: str | None = None,
    force: bool = False,
    genesis_time_ms: int | None = None,
    http_listen: str | None = None,
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256,
) -> WrittenHome:
    """A single-validator chain home with a fresh validator key and a root-authority key
    at keys/root.pem (may create top-level prefixes; owns none yet). Its HTTP gateway
    listens on a free loopback port unless `http_listen` says otherwise."""
    home = NodeHome(directory)
    _prepare(home, force)
    validator = SigningKey.generate()
    root = SigningKey.generate()
    genesis = make_genesis(
        chain_id,
        genesis_time_ms or wall_clock_ms(),
        [(name, validator.public_key)],
        root_authorities=[bid_from_public_key(root.public_key)],
        hash_algorithm=hash_algorithm,
    )
    config = node_config(
        name,
        "validator",
        api_listen or join_address(LOOPBACK, limits.DEFAULT_API_PORT),
        p2p_listen or join_address(LOOPBACK, limits.DEFAULT_P2P_PORT),
        # a free port, not a fixed one: homes written side by side (tests, several chains on
        # one machine) would otherwise all claim the same gateway port
        http_listen=http_listen or join_address(LOOPBACK, free_loopback_ports(1)[0]),
    )
    # a single-node chain is its own TLS CA; its CA key stays in the home, to issue the
    # certificates of nodes that join later
    authority = new_authority(f"{chain_id} peer CA")
    written = _write_home(home, config, genesis, validator, authority)
    keystore.write_key_file(home.root_key_path, root)
    keystore.write_private_file(home.tls_ca_key_path, authority.key_pem)
    return _with_file(_with_file(written, home.root_key_path), home.tls_ca_key_path)


def init_joining_home(
    directory: Path,
    genesis_path: Path,
    peers: Sequence[str],
    tls_ca_cert: Path,
    tls_ca_key: Path,
    name: str,
    api_listen: str | None = None,
    p2p_listen: str | None = None,
    http_listen: str | None = None,
    force: bool = False,
) -> WrittenHome:
    """The home of a validator that joins a running network (DESIGN §12): the network's
    genesis, a fresh validator key, its peer certificate issued by the network CA, and the
    peers to dial. It signs once the chain adds its key (`spark validators propose --add`);
    until then it follows the chain."""
    if not peers:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "--peers: list at least one HOST:PORT")
    genesis = load_genesis(genesis_path)
    authority = TlsAuthority(
        read_option_file(tls_ca_key, "--tls-ca-key"), read_option_file(tls_ca_cert, "--tls-ca")
    )
    home = NodeHome(directory)
    _prepare(home, force)
    ports = free_loopback_ports(3)
    config = node_config(
        name,
        "validator",
        api_listen or join_address(LOOPBACK, ports[0]),
        p2p_listen or join_address(LOOPBACK, ports[1]),
        peers=list(peers),
        http_listen=http_listen or join_address(LOOPBACK, ports[2]),
    )
    return _write_home(home, config, genesis, SigningKey.generate(), authority)


def read_option_file(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SparkError(
            ErrorCode.NOT_FOUND, f"{option}: cannot read {path}: {exc.strerror or exc}"
        ) from None


def dev_home_dir(spark_home: Path) -> Path:
    return spark_home / "dev"


def init_dev_home(spark_home: Path) -> WrittenHome:
    """The development chain at $SPARK_HOME/dev: one validator on the CLI's default
    address, root prefix 88 owned by the dev key ($SPARK_HOME/keys/dev.pem, created when
    missing, kept when present), which is also the root authority.

    Built in a temporary sibling directory and renamed into place, so a crash never
    leaves a half-written dev home that the next `spark node start` would trust."""
    target = dev_home_dir(spark_home)
    if target.exists():
        raise SparkError(ErrorCode.EXISTS, f"the development home {target} already exists")
    dev_key_path = keystore.key_path(keystore.DEV_KEY_NAME, spark_home)
    if dev_key_path.exists():
        dev_key = keystore.read_key_file(dev_key_path)
    else:
        dev_key = SigningKey.generate()
        keystore.write_key_file(dev_key_path, dev_key)
    dev_bid = bid_from_public_key(dev_key.public_key)
    validator = SigningKey.generate()
    genesis = make_genesis(
        DEV_CHAIN_ID,
        wall_clock_ms(),
        [("node1", validator.public_key)],
        root_authorities=[dev_bid],
        prefixes=[(DEV_ROOT_PREFIX, dev_bid)],
    )
    config = node_config(
        "node1",
        "validator",
        join_address(LOOPBACK, limits.DEFAULT_API_PORT),
        join_address(LOOPBACK, limits.DEFAULT_P2P_PORT),
        http_listen=join_address(LOOPBACK, limits.DEFAULT_HTTP_PORT),
    )
    building = target.with_name(f".{target.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True, mode=0o700)
    try:
        # the dev chain has no peers, but its peer port is TLS like every other: a CA of its
        # own, whose key is not kept
        authority = new_authority(f"{DEV_CHAIN_ID} peer CA")
        _write_home(NodeHome(building), config, genesis, validator, authority)
        os.rename(building, target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    home = NodeHome(target)
    files = (
        home.config_path,
        home.genesis_path,
        home.validator_key_path,
        home.file(DEFAULT_P2P_TLS_CA),
        home.file(DEFAULT_P2P_TLS_CERT),
        home.file(DEFAULT_P2P_TLS_KEY),
        dev_key_path,
    )
    return WrittenHome(home, config, genesis, validator.public_key, files)


def node_config(
    name: str,
    role: str,
    api_listen: str,
    p2p_listen: str,
    peers: Sequence[str] = (),
    observers: Sequence[str] = (),
    http_listen: str = "",
    submit_to: Sequence[str] = (),
) -> NodeConfig:
    """The config.toml of a home that `spark init`, `spark testnet init` and the dev chain
    write: the GS1 resolver searches DEFAULT_GS1_PREFIXES."""
    return NodeConfig(
        node=NodeSection(name=name, role=role),
        api=ApiConfig(listen=api_listen, submit_to=tuple(submit_to)),
        p2p=P2pConfig(listen=p2p_listen, peers=tuple(peers), observers=tuple(observers)),
        http=HttpConfig(listen=http_listen),
        gs1=Gs1Config(prefixes=DEFAULT_GS1_PREFIXES),
    )


# ---------------------------------------------------------------------------- testnets


def init_testnet(
    directory: Path,
    validators: int,
    observers: int = 0,
    chain_id: str | None = None,
    base_api_port: int | None = None,
    base_p2p_port: int | None = None,
    force: bool = False,
    genesis_time_ms: int | None = None,
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256,
) -> WrittenTestnet:
    """Homes for `validators` + `observers` nodes on loopback, sharing one genesis whose
    root authority is DIR/keys/root.pem. Every node lists every other node as a peer, and
    every observer's key in `[p2p] observers`.
    Ports are consecutive from the base ports when given, else free ports from the OS; the
    HTTP gateways' ports are always free ports from the OS.
    Without `chain_id`, a new one from `new_testnet_chain_id()`."""
    if validators < 1:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "a testnet needs at least 1 validator")
    if observers < 0:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, "observers cannot be negative")
    names = [f"node{i}" for i in range(1, validators + 1)]
    names += [f"observer{i}" for i in range(1, observers + 1)]
    count = len(names)
    api_ports = _ports(base_api_port, count)
    p2p_ports = _ports(base_p2p_port, count, taken=api_ports)
    # the gateways take free ports the OS gives, whatever the base ports
    http_ports = _ports(None, count, taken=[*api_ports, *p2p_ports])
    if len(set(api_ports) | set(p2p_ports)) != 2 * count:
        raise SparkError(
            ErrorCode.INVALID_ARGUMENT,
            f"API ports {api_ports[0]}.. and p2p ports {p2p_ports[0]}.. overlap",
        )
    _prepare_testnet(directory, force)

    chain_id = chain_id if chain_id is not None else new_testnet_chain_id()
    root = SigningKey.generate()
    root_bid = bid_from_public_key(root.public_key)
    keys = {name: SigningKey.generate() for name in names}
    genesis = make_genesis(
        chain_id,
        genesis_time_ms or wall_clock_ms(),
        [(name, keys[name].public_key) for name in names[:validators]],
        root_authorities=[root_bid],
        hash_algorithm=hash_algorithm,
    )
    authority = new_authority(f"{chain_id} peer CA")
    observer_names = names[validators:]
    p2p = {name: join_address(LOOPBACK, port) for name, port in zip(names, p2p_ports, strict=True)}
    written = []
    # observers forward clients' writes to the validators' APIs (DESIGN §11)
    validator_apis = [join_address(LOOPBACK, port) for port in api_ports[:validators]]
    for index, name in enumerate(names):
        config = node_config(
            name,
            "validator" if index < validators else "observer",
            join_address(LOOPBACK, api_ports[index]),
            p2p[name],
            peers=[p2p[other] for other in names if other != name],
            # nodes refuse observers not listed (DESIGN §11): list the testnet's own
            observers=[keys[other].public_key.hex() for other in observer_names if other != name],
            http_listen=join_address(LOOPBACK, http_ports[index]),
            submit_to=validator_apis if index >= validators else (),
        )
        home = NodeHome(directory / name)
        written.append(_write_home(home, config, genesis, keys[name], authority))
    root_key_path = keystore.key_path("root", directory)
    keystore.write_key_file(root_key_path, root)
    keystore.write_private_file(testnet_tls_ca_key_path(directory), authority.key_pem)
    testnet_tls_ca_path(directory).write_bytes(authority.cert_pem)
    return WrittenTestnet(directory, root_key_path, root_bid, genesis, tuple(written))


def testnet_tls_ca_path(directory: Path) -> Path:
    return keystore.key_dir(directory) / "tls-ca.pem"


def testnet_tls_ca_key_path(directory: Path) -> Path:
    return keystore.key_dir(directory) / "tls-ca-key.pem"


def new_testnet_chain_id() -> str:
    """A chain id no earlier testnet had, e.g. sparkchain-testnet-3f9a01c2. A re-created
    testnet is a new chain; under the old fixed id, `spark resolve --verify` compared it
    with the genesis pinned (by chain id) for the testnet before, and refused it."""
    return f"{TESTNET_CHAIN_ID}-{secrets.token_hex(4)}"


_NODE_DIR = re.compile(r"(node|observer)(\d+)")


def find_testnet_homes(directory: Path) -> list[NodeHome]:
    """The node homes of a testnet: validators first, then observers, each by number."""
    if not directory.is_dir():
        raise SparkError(ErrorCode.NOT_FOUND, f"testnet directory {directory} does not exist")
    found = []
    for child in directory.iterdir():
        match = _NODE_DIR.fullmatch(child.name)
        if match and NodeHome(child).exists():
            found.append((match.group(1) == "observer", int(match.group(2)), NodeHome(child)))
    if not found:
        raise SparkError(
            ErrorCode.NOT_FOUND,
            f"{directory} holds no node homes (create them with: spark testnet init)",
        )
    return [home for _, _, home in sorted(found, key=lambda item: item[:2])]


def free_loopback_ports(count: int) -> list[int]:
    """`count` distinct ports free now, chosen at random below the kernel's ephemeral range.

    A port is chosen when a node home is written and bound only when the node starts. Had
    it come from the ephemeral range (what binding port 0 gives), any outgoing connection
    made in between (a node dialling its peers, a client) could be given it as its source
    port, and the node would then fail to start with ADDRESS_IN_USE. The kernel never
    gives a source port outside that range. Every candidate is bound to check it is free,
    and all stay bound until every port is chosen, so none is handed out twice."""
    low, high = _PORT_POOL
    candidates = _RANDOM.sample(range(low, high), high - low) if high > low else [0] * count
    sockets: list[socket.socket] = []
    try:
        for candidate in candidates:
            if len(sockets) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((LOOPBACK, candidate))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        if len(sockets) < count:
            raise SparkError(
                ErrorCode.UNAVAILABLE,
                f"only {len(sockets)} of {count} loopback ports in {low}-{high - 1} are free",
            )
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for source ports of outgoing connections (Linux's default
    where the kernel does not say)."""
    try:
        low, high = Path(_EPHEMERAL_RANGE_FILE).read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _port_pool() -> tuple[int, int]:
    """Ports to choose from, [low, high): clear of the ephemeral range and of the
    well-known and commonly configured ports below 10000. An empty pool (a kernel whose
    ephemeral range leaves no room) means: let the kernel choose."""
    ephemeral_low, ephemeral_high = ephemeral_port_range()
    if ephemeral_low - _POOL_FLOOR >= 1000:
        return _POOL_FLOOR, ephemeral_low
    if 65535 - ephemeral_high >= 1000:
        return ephemeral_high + 1, 65536
    return 0, 0


_EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
_POOL_FLOOR = 10000
_PORT_POOL = _port_pool()
_RANDOM = random.SystemRandom()


# ---------------------------------------------------------------------------- internals


def _ports(base: int | None, count: int, taken: Sequence[int] = ()) -> list[int]:
    if base is None:
        while True:
            ports = free_loopback_ports(count)
            if not set(ports) & set(taken):
                return ports
    if not 1 <= base <= 65535 - count + 1:
        raise SparkError(ErrorCode.INVALID_ARGUMENT, f"base port {base} leaves too few ports")
    return list(range(base, base + count))


def _prepare(home: NodeHome, force: bool) -> None:
    present = [p for p in home.managed_paths() if p.exists()]
    if present and not force:
        raise SparkError(
            ErrorCode.EXISTS,
            f"{home.root} already holds a node home ({present[0].name}); "
            "use --force to replace it (its keys and chain data are deleted)",
        )
    if present:
        _refuse_if_running(home)
        for path in present:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    home.root.mkdir(parents=True, exist_ok=True)


def _prepare_testnet(directory: Path, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise SparkError(ErrorCode.EXISTS, f"{directory} exists and is not a directory")
    if directory.is_dir() and any(directory.iterdir()):
        if not force:
            raise SparkError(
                ErrorCode.EXISTS,
                f"{directory} is not empty; use --force to replace the testnet in it",
            )
        homes = [NodeHome(c) for c in directory.iterdir() if _NODE_DIR.fullmatch(c.name)]
        for home in homes:
            _refuse_if_running(home)
        for home in homes:
            shutil.rmtree(home.root)
        keystore.key_path("root", directory).unlink(missing_ok=True)
        testnet_tls_ca_path(directory).unlink(missing_ok=True)
        testnet_tls_ca_key_path(directory).unlink(missing_ok=True)
    directory.mkdir(parents=True, exist_ok=True)


def _refuse_if_running(home: NodeHome) -> None:
    from sparkchain.node.launcher import running_pid  # the launcher imports this module

    pid = running_pid(home)
    if pid is not None:
        raise SparkError(
            ErrorCode.EXISTS, f"the node in {home.root} is running (pid {pid}); stop it first"
        )


def _write_home(
    home: NodeHome,
    config: NodeConfig,
    genesis: Genesis,
    node_key: SigningKey,
    authority: TlsAuthority,
) -> WrittenHome:
    home.root.mkdir(parents=True, exist_ok=True)
    home.data_dir.mkdir(exist_ok=True, mode=0o700)
    key_path = home.node_key_path(config)
    keystore.write_key_file(key_path, node_key)
    tls = issue_node_certificate(authority, config.node.name, node_key.public_key)
    tls_files = tuple(home.file(p) for p in (DEFAULT_P2P_TLS_CA, DEFAULT_P2P_TLS_CERT))
    for path, pem in zip(tls_files, (tls.ca_pem, tls.cert_pem), strict=True):
        path.write_bytes(pem)
    tls_key_path = home.file(DEFAULT_P2P_TLS_KEY)
    keystore.write_private_file(tls_key_path, tls.key_pem)
    home.genesis_path.write_text(genesis_to_json(genesis), encoding="utf-8")
    write_config(home.config_path, config)  # last: a home "exists" once its config does
    files = (home.config_path, home.genesis_path, key_path, *tls_files, tls_key_path)
    return WrittenHome(home, config, genesis, node_key.public_key, files)


def _with_file(written: WrittenHome, path: Path) -> WrittenHome:
    return dataclasses.replace(written, files=(*written.files, path))


def load_genesis(path: Path) -> Genesis:
    """Read and parse a genesis file; every error names the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SparkError(
            ErrorCode.INVALID_GENESIS, f"{path}: cannot read: {exc.strerror or exc}"
        ) from None
    return parse_genesis(data, str(path))
