"""An observer's writes (DESIGN §11): txs travel between validators only, so an observer
never admits a client's tx itself; it forwards the client's Submit and SubmitStream calls to
a validator's public API, as the client would, and relays the answers unchanged.

`[api] submit_to` lists the validators' API addresses in order of preference. A unary
Submit that finds a validator unreachable before it answered tries the next one (a tx is
identified by its bytes, so one that did reach the first validator is refused by the next
as DUPLICATE_TX, never applied twice). A stream is tied to the first validator that
accepts a connection; if that validator goes away mid-stream, the stream ends UNAVAILABLE
and the client resubmits what has no answer, as it would after any broken connection.
A validator's refusal reaches the client with the validator's status, code and message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import MAX_API_MESSAGE_BYTES
from sparkchain.node.config import dial_address
from sparkchain.proto import api_pb2, api_pb2_grpc

CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_API_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_API_MESSAGE_BYTES),
)
CONNECT_TIMEOUT_S = 5.0  # how long a validator may take to accept a connection
# beyond the client's own wait for the commit: the forwarded call's deadline margin
FORWARD_MARGIN_S = 10.0


class UpstreamRefusal(Exception):
    """A validator answered the forwarded call with an error: relay it unchanged."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        super().__init__(error.details())
        self.error = error


class SubmitForwarder:
    def __init__(self, addresses: Sequence[str], tls_ca: bytes | None = None) -> None:
        if not addresses:
            raise SparkError(ErrorCode.INVALID_CONFIG, "an observer forwards to no validator")
        self._addresses = [dial_address(address) for address in addresses]
        self._tls_ca = tls_ca
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._preferred = 0  # the one that answered last is asked first

    @property
    def addresses(self) -> list[str]:
        return list(self._addresses)

    def _stub(self, address: str) -> api_pb2_grpc.IdentifiersAsyncStub:
        channel = self._channels.get(address)
        if channel is None:
            if self._tls_ca is None:
                channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
            else:
                credentials = grpc.ssl_channel_credentials(root_certificates=self._tls_ca)
                channel = grpc.aio.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
            self._channels[address] = channel
        return api_pb2_grpc.IdentifiersStub(channel)

    def _in_order(self) -> list[tuple[int, str]]:
        count = len(self._addresses)
        order = [(self._preferred + offset) % count for offset in range(count)]
        return [(index, self._addresses[index]) for index in order]

    async def submit(self, request: api_pb2.SubmitRequest, wait_s: float) -> api_pb2.SubmitResponse:
        """The first reachable validator's answer; UpstreamRefusal when it refused."""
        unreachable: list[str] = []
        for index, address in self._in_order():
            try:
                response: api_pb2.SubmitResponse = await self._stub(address).Submit(
                    request, timeout=wait_s + FORWARD_MARGIN_S
                )
            except grpc.aio.AioRpcError as error:
                if error.code() is grpc.StatusCode.UNAVAILABLE:
                    unreachable.append(f"{address}: {error.details()}")
                    continue
                raise UpstreamRefusal(error) from None
            self._preferred = index
            return response
        raise _none_reachable(unreachable)

    async def submit_stream(
        self, requests: AsyncIterator[api_pb2.SubmitRequest]
    ) -> AsyncIterator[api_pb2.SubmitResponse]:
        """The client's stream, relayed to the first validator that accepts a connection."""
        unreachable: list[str] = []
        for index, address in self._in_order():
            stub = self._stub(address)
            channel = self._channels[address]
            try:
                await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT_S)
            except TimeoutError:
                unreachable.append(f"{address}: no connection in {CONNECT_TIMEOUT_S:g} s")
                continue
            self._preferred = index
            call: Any = stub.SubmitStream(requests)
            try:
                async for response in call:
                    yield response
            except grpc.aio.AioRpcError as error:
                raise UpstreamRefusal(error) from None
            return
        raise _none_reachable(unreachable)

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()


def _none_reachable(reasons: list[str]) -> SparkError:
    return SparkError(
        ErrorCode.UNAVAILABLE,
        "this observer forwards writes to validators, and none answered: " + "; ".join(reasons),
    )


async def relay_refusal(
    context: grpc.aio.ServicerContext[Any, Any], refusal: UpstreamRefusal
) -> None:
    """End the client's call with the validator's own status, details and metadata."""
    error = refusal.error
    # aio's Metadata is a sequence of (key, value) pairs; abort() takes a tuple of them
    metadata = tuple((key, value) for key, value in error.trailing_metadata() or ())
    await context.abort(error.code(), error.details() or "", metadata)
