"""Run node homes as background processes: start (and wait until the node answers), stop,
status. Used by `spark testnet` and by integration tests and benchmarks.

A started node is `python -m sparkchain.node --home DIR`, in its own session (so a Ctrl-C in the
terminal that started it does not reach it), with stdout and stderr appended to
DIR/node.log and its pid in DIR/node.pid. A node "answers" when its public gRPC API
serves Chain.Status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from sparkchain.identifiers import limits
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node.config import NodeConfig, dial_address
from sparkchain.node.home import NodeHome
from sparkchain.node.storage import ledger_in_use
from sparkchain.node.tls import first_dns_name
from sparkchain.proto import api_pb2, api_pb2_grpc

POLL_INTERVAL_S = 0.05
KILL_WAIT_S = 5.0
LOG_TAIL_LINES = 5


@dataclass(frozen=True, slots=True)
class NodeStatus:
    name: str
    role: str
    home: Path
    api: str  # the address clients dial
    http: str  # the address HTTP clients dial; "" when the gateway is off
    pid: int | None  # None: no process running
    height: int | None  # None: not answering Chain.Status

    @property
    def state(self) -> str:
        return "up" if self.height is not None else "down"


def node_command(home: Path, log_level: str | None = None) -> list[str]:
    command = [sys.executable, "-m", "sparkchain.node", "--home", str(home.resolve())]
    if log_level:
        command += ["--log-level", log_level]
    return command


def query_status(
    address: str, timeout_s: float = 1.0, root_certificates: bytes | None = None
) -> api_pb2.StatusResponse | None:
    """The node's Chain.Status, or None when nothing answers at `address` in time. With
    `root_certificates`, over TLS, checking the name in the first of them (the node's own
    certificate chain, so a probe works whichever host name the certificate gives)."""
    with _api_channel(address, root_certificates) as channel:
        try:
            response: api_pb2.StatusResponse = api_pb2_grpc.ChainStub(channel).Status(
                api_pb2.StatusRequest(), timeout=timeout_s
            )
        except grpc.RpcError:
            return None
    return response


def _api_channel(address: str, root_certificates: bytes | None) -> grpc.Channel:
    if root_certificates is None:
        return grpc.insecure_channel(address)
    name = first_dns_name(root_certificates)
    options = [("grpc.ssl_target_name_override", name)] if name else []
    credentials = grpc.ssl_channel_credentials(root_certificates)
    return grpc.secure_channel(address, credentials, options=options)


def api_trust(home: NodeHome, config: NodeConfig) -> bytes | None:
    """What the local tools trust on this home's TLS API: its own certificate file (which
    must hold the chain up to its CA, or be self-signed). None: the API is plaintext."""
    api_tls = home.api_tls(config)
    return api_tls[0] if api_tls is not None else None


def running_pid(home: NodeHome) -> int | None:
    """The pid in DIR/node.pid when that process is alive and is this home's node."""
    try:
        pid = int(home.pid_path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if pid <= 0 or not process_alive(pid) or not _runs_home(pid, home):
        return None  # a stale file: the node died, or the pid now belongs to someone else
    return pid


def refuse_while_running(home: NodeHome, then: str) -> None:
    """UNAVAILABLE when the node of `home` runs: its pid file names a live node, or a
    process holds its ledger's LevelDB lock (LevelDB allows one process). `then` says what
    to do once it is stopped."""
    pid = running_pid(home)
    if pid is not None or ledger_in_use(home.ledger_dir):
        which = f" (pid {pid})" if pid is not None else ""
        raise SparkError(
            ErrorCode.UNAVAILABLE, f"the node in {home.root} is running{which}: {then}"
        )


def spawn_node(
    home: NodeHome, log_level: str | None = None, command: Sequence[str] | None = None
) -> subprocess.Popen[bytes]:
    """Start the node without waiting for it; `command` replaces the node command (tests)."""
    config = home.config()  # fail here, naming the field, rather than in the log
    pid = running_pid(home)
    if pid is not None:
        raise SparkError(
            ErrorCode.EXISTS, f"node {config.node.name} is already running (pid {pid})"
        )
    argv = list(command) if command is not None else node_command(home.root, log_level)
    with home.log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _write_pid(home, process.pid)
    return process


def wait_until_answering(
    home: NodeHome,
    process: subprocess.Popen[bytes] | None = None,
    timeout_s: float = limits.NODE_START_TIMEOUT_S,
) -> api_pb2.StatusResponse:
    """Poll Chain.Status until the node answers; fail early if `process` exits."""
    config = home.config()
    address = dial_address(config.api.listen)
    trust = api_trust(home, config)
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            home.pid_path.unlink(missing_ok=True)
            raise SparkError(
                ErrorCode.UNAVAILABLE,
                f"node {config.node.name} exited with code {process.returncode} before "
                f"answering on {address}; {home.log_path} ends: {log_tail(home)}",
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SparkError(
                ErrorCode.TIMEOUT,
                f"node {config.node.name} did not answer on {address} within {timeout_s:g} s;"
                f" see {home.log_path}",
            )
        status = query_status(address, min(1.0, max(remaining, 0.05)), trust)
        if status is not None:
            return status
        time.sleep(min(POLL_INTERVAL_S, max(remaining, 0)))


def start_nodes(
    homes: Sequence[NodeHome],
    timeout_s: float = limits.NODE_START_TIMEOUT_S,
    log_level: str | None = None,
    command_for: dict[Path, Sequence[str]] | None = None,
) -> dict[Path, api_pb2.StatusResponse]:
    """Start every home, then wait for all: validators need each other to make blocks, but
    each answers Chain.Status on its own. Homes whose node already runs are only waited for.
    """
    processes: dict[Path, subprocess.Popen[bytes] | None] = {}
    for home in homes:
        if running_pid(home) is not None:
            processes[home.root] = None
            continue
        command = (command_for or {}).get(home.root)
        processes[home.root] = spawn_node(home, log_level, command)
    deadline = time.monotonic() + timeout_s
    answers = {}
    for home in homes:
        remaining = max(deadline - time.monotonic(), 0.05)
        answers[home.root] = wait_until_answering(home, processes[home.root], remaining)
    return answers


def start_node(
    home: NodeHome,
    timeout_s: float = limits.NODE_START_TIMEOUT_S,
    log_level: str | None = None,
    command: Sequence[str] | None = None,
) -> api_pb2.StatusResponse:
    process = spawn_node(home, log_level, command)
    return wait_until_answering(home, process, timeout_s)


def stop_nodes(homes: Iterable[NodeHome], grace_s: float = limits.NODE_STOP_GRACE_S) -> list[Path]:
    """SIGTERM every running node, SIGKILL those still alive after `grace_s`; returns the
    homes whose node was running."""
    running: dict[Path, tuple[NodeHome, int]] = {}
    for home in homes:
        pid = running_pid(home)
        if pid is None:
            home.pid_path.unlink(missing_ok=True)
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        running[home.root] = (home, pid)
    pids = [pid for _, pid in running.values()]
    _wait_for_exit(pids, grace_s)
    stubborn = [pid for pid in pids if process_alive(pid)]
    for pid in stubborn:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_for_exit(stubborn, KILL_WAIT_S)
    for home, _ in running.values():
        home.pid_path.unlink(missing_ok=True)
    return list(running)


def stop_node(home: NodeHome, grace_s: float = limits.NODE_STOP_GRACE_S) -> bool:
    return bool(stop_nodes([home], grace_s))


def node_status(home: NodeHome, timeout_s: float = 1.0) -> NodeStatus:
    config = home.config()
    address = dial_address(config.api.listen)
    pid = running_pid(home)
    # a node started in the foreground has no pid file but may still answer
    answer = query_status(address, timeout_s, api_trust(home, config))
    return NodeStatus(
        name=config.node.name,
        role=config.node.role,
        home=home.root,
        api=address,
        http=dial_address(config.http.listen) if config.http.listen else "",
        pid=pid,
        height=answer.height if answer is not None else None,
    )


def log_tail(home: NodeHome, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = home.log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail) if tail else "(empty log)"


def _write_pid(home: NodeHome, pid: int) -> None:
    temporary = home.pid_path.with_name(home.pid_path.name + ".tmp")
    temporary.write_text(f"{pid}\n")
    os.replace(temporary, home.pid_path)


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        # our own child: alive until waitpid reaps it. Its /proc state is no guide: the
        # leader of a dying multi-threaded process shows "Z" while its threads still exit.
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped != pid
    except ChildProcessError:
        pass  # not our child (started by an earlier `spark testnet start`)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # the state letter follows the parenthesised command name, which may hold spaces
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] == "Z"


def _runs_home(pid: int, home: NodeHome) -> bool:
    """Whether process `pid` was started with `--home` naming this home, so that a stale
    pid file never makes us signal an unrelated process that reused the pid."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no procfs (macOS): trust the pid file
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in argv]
    for i, arg in enumerate(args[:-1]):
        if arg == "--home":
            with contextlib.suppress(OSError):
                started_in = Path(os.readlink(f"/proc/{pid}/cwd"))
                return (started_in / args[i + 1]).resolve() == home.root.resolve()
    return False


def _wait_for_exit(pids: Sequence[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while any(process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)
