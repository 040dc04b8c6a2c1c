"""The CLI's side of the public gRPC API: which node, which key, and calls whose failures
arrive as SparkError with the node's own error code (node/grpc_errors.py).

Node: --node HOST:PORT, else $SPARK_NODE, else the local development node 127.0.0.1:7100.
TLS: --tls-ca FILE, else $SPARK_TLS_CA: dial the node over TLS, trusting the CA
certificates in FILE; with neither, plaintext.
Key: --key NAME (from the key directory), --key-file PATH, else the development key
$SPARK_HOME/keys/dev.pem that `spark node start` creates for the development chain.
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TypeVar

import grpc

from sparkchain.cli.keys_cmd import load_named_key, read_key
from sparkchain.cli.rpc_errors import from_rpc_error
from sparkchain.identifiers.accounts import AccountKey
from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    DEFAULT_API_PORT,
    DEFAULT_SUBMIT_WAIT_MS,
    MAX_API_MESSAGE_BYTES,
)
from sparkchain.identifiers.tx import TxBuilder
from sparkchain.node import keystore
from sparkchain.proto import api_pb2, api_pb2_grpc
from sparkchain.proto import types_pb2 as pb

Request = TypeVar("Request")
Response = TypeVar("Response")

DEFAULT_NODE = f"127.0.0.1:{DEFAULT_API_PORT}"
NODE_ENV = "SPARK_NODE"
TLS_CA_ENV = "SPARK_TLS_CA"
CALL_TIMEOUT_S = 15.0
# a write that waits for its commit gets the node's wait plus this much for the answer
WAIT_MARGIN_S = 5.0

CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_API_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_API_MESSAGE_BYTES),
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def node_target(explicit: str | None) -> str:
    return explicit or os.environ.get(NODE_ENV) or DEFAULT_NODE


def add_node_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--node",
        metavar="HOST:PORT",
        help=f"node to talk to (default ${NODE_ENV} or {DEFAULT_NODE})",
    )
    parser.add_argument(
        "--tls-ca",
        metavar="FILE",
        type=Path,
        help=f"dial the node over TLS, trusting the CA certificates (PEM) in FILE "
        f"(default ${TLS_CA_ENV}; with neither, plaintext)",
    )


def tls_ca(explicit: Path | None) -> bytes | None:
    """The CA certificates to check a TLS API with, or None to dial in plaintext."""
    env = os.environ.get(TLS_CA_ENV)
    path = explicit if explicit is not None else (Path(env).expanduser() if env else None)
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SparkError(
            ErrorCode.NOT_FOUND, f"--tls-ca: cannot read {path}: {exc.strerror or exc}"
        ) from None


def add_key_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--key", metavar="NAME", help="signing key NAME from the key directory")
    group.add_argument("--key-file", metavar="PATH", type=Path, help="signing key PEM file")


def load_signing_key(args: argparse.Namespace) -> AccountKey:
    key_file: Path | None = getattr(args, "key_file", None)
    name: str | None = getattr(args, "key", None)
    if key_file is not None:
        return read_key(key_file)
    if name is not None:
        return load_named_key(name)
    path = keystore.key_path(keystore.DEV_KEY_NAME)
    if not path.exists():
        raise SparkError(
            ErrorCode.NOT_FOUND,
            f"no signing key given and the development key {path} does not exist "
            "(run `spark node start` once to create the development chain, "
            "or pass --key NAME / --key-file PATH)",
        )
    return read_key(path)


class NodeClient:
    """One channel to one node; every failure is a SparkError."""

    def __init__(
        self, target: str, timeout_s: float = CALL_TIMEOUT_S, tls_ca: bytes | None = None
    ) -> None:
        self.target = target
        self.timeout_s = timeout_s
        if tls_ca is None:
            self._channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca)
            self._channel = grpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
        self.identifiers = api_pb2_grpc.IdentifiersStub(self._channel)
        self.chain = api_pb2_grpc.ChainStub(self._channel)
        self._status: api_pb2.StatusResponse | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> NodeClient:
        return cls(
            node_target(getattr(args, "node", None)),
            tls_ca=tls_ca(getattr(args, "tls_ca", None)),
        )

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self,
        method: grpc.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        timeout_s: float | None = None,
    ) -> Response:
        try:
            return method(request, timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as error:
            raise from_rpc_error(error, self.target) from None

    def translate(self, error: grpc.RpcError) -> SparkError:
        return from_rpc_error(error, self.target)

    # ---- chain ----

    def status(self) -> api_pb2.StatusResponse:
        self._status = self.call(self.chain.Status, api_pb2.StatusRequest())
        return self._status

    @property
    def chain_id(self) -> str:
        if self._status is None:
            self.status()
        assert self._status is not None
        return self._status.chain_id

    def genesis_json(self) -> bytes:
        response: api_pb2.GenesisResponse = self.call(self.chain.Genesis, api_pb2.GenesisRequest())
        return response.genesis_json

    def validators(self, height: int = 0) -> api_pb2.ValidatorsResponse:
        """The validators of `height` (0: the next height to decide), with the proved
        changes from the genesis."""
        response: api_pb2.ValidatorsResponse = self.call(
            self.chain.Validators, api_pb2.ValidatorsRequest(height=height)
        )
        return response

    def tx_builder(self, key: AccountKey) -> TxBuilder:
        return TxBuilder(self.chain_id, key, secrets.SystemRandom())

    # ---- identifiers ----

    def submit(self, tx: pb.SignedTx, wait: bool, timeout_ms: int = 0) -> api_pb2.SubmitResponse:
        request = api_pb2.SubmitRequest(tx=tx, wait_for_commit=wait, timeout_ms=timeout_ms)
        deadline = None
        if wait:
            deadline = (timeout_ms or DEFAULT_SUBMIT_WAIT_MS) / 1000 + WAIT_MARGIN_S
        return self.call(self.identifiers.Submit, request, deadline)

    def submit_stream(
        self, requests: Iterator[api_pb2.SubmitRequest]
    ) -> Generator[api_pb2.SubmitResponse, None, None]:
        """Responses in request order; a broken stream raises SparkError while iterating."""
        responses = self.identifiers.SubmitStream(requests)
        try:
            yield from responses
        except grpc.RpcError as error:
            raise from_rpc_error(error, self.target) from None
        finally:
            responses.cancel()

    def resolve(
        self,
        identifier: str,
        types: list[str] | None = None,
        indexes: list[int] | None = None,
        with_proof: bool = False,
        height: int = 0,
    ) -> api_pb2.ResolveResponse:
        """`height` 0: the last block; else the record as block `height` left it."""
        request = api_pb2.ResolveRequest(
            identifier=identifier,
            types=types or [],
            indexes=indexes or [],
            with_proof=with_proof,
            height=height,
        )
        return self.call(self.identifiers.Resolve, request)

    def resolve_future(self, identifier: str) -> grpc.Future[api_pb2.ResolveResponse]:
        """A Resolve in flight (grpc future); `result()` raises grpc.RpcError."""
        return self.identifiers.Resolve.future(
            api_pb2.ResolveRequest(identifier=identifier), timeout=self.timeout_s
        )

    def history(self, identifier: str, limit: int = 0) -> api_pb2.HistoryResponse:
        return self.call(
            self.identifiers.History, api_pb2.HistoryRequest(identifier=identifier, limit=limit)
        )

    def list_page(
        self, prefix: str, page_size: int = 0, page_token: str = ""
    ) -> api_pb2.ListResponse:
        request = api_pb2.ListRequest(prefix=prefix, page_size=page_size, page_token=page_token)
        return self.call(self.identifiers.List, request)

    def prefix_info(self, prefix: str) -> api_pb2.PrefixInfoResponse:
        return self.call(self.identifiers.PrefixInfo, api_pb2.PrefixInfoRequest(prefix=prefix))
