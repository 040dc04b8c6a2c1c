"""Clients that write and read through different nodes while the nemesis works.

Each client owns its identifiers (`88/CHAOS-S{seed}-C{client}-{n}`) and writes them one op
at a time: register, update (a new payload), transfer (a new owner). After an op whose
outcome is unknown, the client never writes that identifier again, so its final state is
the one of its acknowledged ops, with or without that last op: what the checker accepts.
Reads (resolve of any client's identifier, status) go through any node.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from dataclasses import dataclass, field

import grpc

from sparkchain.identifiers.bid import bid_from_public_key
from sparkchain.identifiers.keys import SigningKey
from sparkchain.identifiers.tx import TxBuilder, tx_id, value
from sparkchain.node.mempool import wall_clock_ms
from sparkchain.proto import api_pb2, api_pb2_grpc
from sparkchain.proto import types_pb2 as pb
from tests.chaos.history import History, Op

PAYLOAD_INDEX = 1
PAYLOAD_TYPE = "URL"
PAYLOAD_URL = "https://chaos.example/"
COMMIT_WAIT_MS = 8000  # the node answers TIMEOUT after this: an unknown outcome
RPC_SLACK_S = 4.0
READ_TIMEOUT_S = 5.0
# a tx lives long enough to outlast any fault, and the largest skew of a proposer's clock
TX_LIFETIME_MS = 10 * 60 * 1000
# refusals that mean the tx never entered any mempool or block; anything else is unknown
DEFINITE_REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)
OWNER_NAMES = ("alice", "bob", "carol")
PAUSE_BETWEEN_OPS_S = (0.02, 0.2)


def payload_of(record: pb.Record) -> str:
    for item in record.values:
        if item.index == PAYLOAD_INDEX:
            return item.data.decode("utf-8", "replace").removeprefix(PAYLOAD_URL)
    return ""


def error_code(error: grpc.RpcError) -> str:
    metadata = dict(error.trailing_metadata() or ())  # type: ignore[attr-defined]
    code = metadata.get("spark-error-code")
    return str(code) if code else str(error.code().name)  # type: ignore[attr-defined]


@dataclass
class _Owned:
    identifier: str
    writable: bool = True


@dataclass
class Client:
    number: int
    seed: int
    chain_id: str
    root_key: SigningKey
    apis: dict[str, str]  # node name -> API address
    history: History
    stop: threading.Event
    known: list[str]  # every identifier any client registered (shared, append-only)
    owned: list[_Owned] = field(default_factory=list)

    def run(self) -> None:
        rng = random.Random(self.seed * 1000 + self.number)
        builder = TxBuilder(self.chain_id, self.root_key, secrets.SystemRandom())
        owners = [
            bid_from_public_key(SigningKey.from_seed(name.encode().ljust(32, b".")).public_key)
            for name in OWNER_NAMES
        ]
        channels = {name: grpc.insecure_channel(api) for name, api in self.apis.items()}
        counter = 0
        try:
            while not self.stop.is_set():
                node = rng.choice(sorted(channels))
                channel = channels[node]
                writable = [owned for owned in self.owned if owned.writable]
                roll = rng.random()
                if roll < 0.25 or not writable:
                    counter += 1
                    identifier = f"88/CHAOS-S{self.seed}-C{self.number}-{counter}"
                    self.owned.append(_Owned(identifier))
                    self.known.append(identifier)
                    payload = f"{identifier}#0"
                    tx = builder.register(
                        identifier,
                        [value(PAYLOAD_INDEX, PAYLOAD_TYPE, PAYLOAD_URL + payload)],
                        now_ms=wall_clock_ms(),
                        lifetime_ms=TX_LIFETIME_MS,
                    )
                    op = Op(0, self.number, node, "register", identifier, payload=payload)
                    self._write(channel, op, tx, self.owned[-1])
                elif roll < 0.45:
                    owned = rng.choice(writable)
                    payload = f"{owned.identifier}#{rng.getrandbits(48):x}"
                    tx = builder.update(
                        owned.identifier,
                        [value(PAYLOAD_INDEX, PAYLOAD_TYPE, PAYLOAD_URL + payload)],
                        now_ms=wall_clock_ms(),
                        lifetime_ms=TX_LIFETIME_MS,
                    )
                    op = Op(0, self.number, node, "update", owned.identifier, payload=payload)
                    self._write(channel, op, tx, owned)
                elif roll < 0.55:
                    owned = rng.choice(writable)
                    new_owner = rng.choice(owners)
                    tx = builder.transfer(
                        owned.identifier,
                        new_owner,
                        now_ms=wall_clock_ms(),
                        lifetime_ms=TX_LIFETIME_MS,
                    )
                    op = Op(0, self.number, node, "transfer", owned.identifier, owner=new_owner)
                    self._write(channel, op, tx, owned)
                elif roll < 0.9 and self.known:
                    self._resolve(channel, node, rng.choice(self.known))
                else:
                    self._status(channel, node)
                # a plant's clients, not a load test: the nodes keep CPU for consensus
                self.stop.wait(rng.uniform(*PAUSE_BETWEEN_OPS_S))
        finally:
            for channel in channels.values():
                channel.close()

    def _write(self, channel: grpc.Channel, op: Op, tx: pb.SignedTx, owned: _Owned) -> None:
        op.tx_id = tx_id(tx).hex()
        self.history.invoke(op)
        stub = api_pb2_grpc.IdentifiersStub(channel)
        request = api_pb2.SubmitRequest(tx=tx, wait_for_commit=True, timeout_ms=COMMIT_WAIT_MS)
        try:
            response = stub.Submit(request, timeout=COMMIT_WAIT_MS / 1000 + RPC_SLACK_S)
        except grpc.RpcError as error:
            code = error_code(error)
            # DUPLICATE_TX is no refusal of the write: the tx is already in a mempool or the
            # ledger. With wait_for_commit a node answers a tx sent again with its commit
            # (node/api.py), so this should not come; if it does, the outcome is unknown
            if code != "DUPLICATE_TX" and error.code() in DEFINITE_REFUSALS:  # type: ignore[attr-defined]
                self.history.complete(op, "fail", code=code)
                if op.f == "register":
                    owned.writable = False  # refused: there is nothing to write to
            else:
                owned.writable = False
                self.history.complete(op, "info", code=code)
                time.sleep(0.2)  # the node is away or slow: do not spin on it
            return
        if response.committed:
            self.history.complete(op, "ok", height=response.height)
        else:
            owned.writable = False
            self.history.complete(op, "info", code="NOT_COMMITTED")

    def _resolve(self, channel: grpc.Channel, node: str, identifier: str) -> None:
        op = self.history.invoke(Op(0, self.number, node, "resolve", identifier))
        stub = api_pb2_grpc.IdentifiersStub(channel)
        try:
            answer = stub.Resolve(
                api_pb2.ResolveRequest(identifier=identifier), timeout=READ_TIMEOUT_S
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                self.history.complete(op, "ok", found=False, code="NOT_FOUND")
            else:
                self.history.complete(op, "info", code=error_code(error))
                time.sleep(0.2)
            return
        self.history.complete(
            op,
            "ok",
            height=answer.height,
            found=True,
            seen_payload=payload_of(answer.record),
            seen_owner=answer.record.owner,
        )

    def _status(self, channel: grpc.Channel, node: str) -> None:
        op = self.history.invoke(Op(0, self.number, node, "status"))
        try:
            status = api_pb2_grpc.ChainStub(channel).Status(
                api_pb2.StatusRequest(), timeout=READ_TIMEOUT_S
            )
        except grpc.RpcError as error:
            self.history.complete(op, "info", code=error_code(error))
            time.sleep(0.2)
            return
        self.history.complete(op, "ok", height=status.height)


class Workload:
    def __init__(
        self,
        clients: int,
        seed: int,
        chain_id: str,
        root_key: SigningKey,
        apis: dict[str, str],
        history: History,
    ) -> None:
        self.stop = threading.Event()
        known: list[str] = []
        self.clients = [
            Client(number, seed, chain_id, root_key, apis, history, self.stop, known)
            for number in range(clients)
        ]
        self._threads = [
            threading.Thread(target=client.run, name=f"chaos-client-{client.number}", daemon=True)
            for client in self.clients
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def finish(self, timeout_s: float = 60.0) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
