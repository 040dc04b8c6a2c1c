"""What a user would pick instead: a 3-member etcd cluster on loopback (Debian package
`etcd-server`, installed here with apt-get when missing — never by the tests).

etcd speaks gRPC, so the benchmark's own grpc.aio client drives it with hand-encoded
PutRequest/RangeRequest messages (field 1 key, field 2 value) and ignores the answers'
contents: the same client as against our nodes.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import grpc

from bench.debian import find_or_install
from sparkchain.node.home import free_loopback_ports

PUT_METHOD = "/etcdserverpb.KV/Put"
RANGE_METHOD = "/etcdserverpb.KV/Range"
MEMBERS = 3
READY_TIMEOUT_S = 30.0


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def put_request(key: bytes, value: bytes) -> bytes:
    return _length_delimited(1, key) + _length_delimited(2, value)


def range_request(key: bytes, serializable: bool = False) -> bytes:
    """A RangeRequest for one key; `serializable` (field 7) lets the member answer from its
    own state without a quorum round, as our nodes answer a resolve."""
    request = _length_delimited(1, key)
    return request + (_varint(7 << 3) + _varint(1) if serializable else b"")


def find_or_install_etcd() -> tuple[str | None, str]:
    """(path of the etcd binary, "") or (None, why not)."""
    return find_or_install("etcd", "etcd-server")


class EtcdCluster:
    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        ports = free_loopback_ports(2 * MEMBERS)
        self.client_ports = ports[:MEMBERS]
        self.peer_ports = ports[MEMBERS:]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def client_addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.client_ports]

    def start(self) -> None:
        initial = ",".join(
            f"m{i}=http://127.0.0.1:{port}" for i, port in enumerate(self.peer_ports)
        )
        for i in range(MEMBERS):
            client = f"http://127.0.0.1:{self.client_ports[i]}"
            peer = f"http://127.0.0.1:{self.peer_ports[i]}"
            log = (self.directory / f"m{i}.log").open("wb")
            flags = {
                "--name": f"m{i}",
                "--data-dir": str(self.directory / f"m{i}"),
                "--listen-client-urls": client,
                "--advertise-client-urls": client,
                "--listen-peer-urls": peer,
                "--initial-advertise-peer-urls": peer,
                "--initial-cluster": initial,
                "--initial-cluster-state": "new",
                "--initial-cluster-token": "spark-bench",
            }
            argv = [self.binary, *(part for pair in flags.items() for part in pair)]
            self.processes.append(
                subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        with grpc.insecure_channel(self.client_addresses[0]) as channel:
            put = channel.unary_unary(PUT_METHOD)
            while True:
                try:
                    put(put_request(b"bench/ready", b"1"), timeout=2)
                    return
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
