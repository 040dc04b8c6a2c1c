from sparkchain.proto import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Handshake(_message.Message):
    __slots__ = ("chain_id", "public_key", "nonce", "peer_nonce", "signature", "height", "observer")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    PEER_NONCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OBSERVER_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    public_key: bytes
    nonce: bytes
    peer_nonce: bytes
    signature: bytes
    height: int
    observer: bool
    def __init__(self, chain_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., nonce: _Optional[bytes] = ..., peer_nonce: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., height: _Optional[int] = ..., observer: _Optional[bool] = ...) -> None: ...

class TxBatch(_message.Message):
    __slots__ = ("txs",)
    TXS_FIELD_NUMBER: _ClassVar[int]
    txs: _containers.RepeatedCompositeFieldContainer[_types_pb2.SignedTx]
    def __init__(self, txs: _Optional[_Iterable[_Union[_types_pb2.SignedTx, _Mapping]]] = ...) -> None: ...

class PeerStatus(_message.Message):
    __slots__ = ("height",)
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    height: int
    def __init__(self, height: _Optional[int] = ...) -> None: ...

class PeerMessage(_message.Message):
    __slots__ = ("handshake", "proposal", "vote", "txs", "status")
    HANDSHAKE_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    TXS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    handshake: Handshake
    proposal: _types_pb2.Proposal
    vote: _types_pb2.Vote
    txs: TxBatch
    status: PeerStatus
    def __init__(self, handshake: _Optional[_Union[Handshake, _Mapping]] = ..., proposal: _Optional[_Union[_types_pb2.Proposal, _Mapping]] = ..., vote: _Optional[_Union[_types_pb2.Vote, _Mapping]] = ..., txs: _Optional[_Union[TxBatch, _Mapping]] = ..., status: _Optional[_Union[PeerStatus, _Mapping]] = ...) -> None: ...

class GetBlocksRequest(_message.Message):
    __slots__ = ("from_height", "to_height")
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TO_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    to_height: int
    def __init__(self, from_height: _Optional[int] = ..., to_height: _Optional[int] = ...) -> None: ...

class CommittedBlock(_message.Message):
    __slots__ = ("block", "commit")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    block: _types_pb2.Block
    commit: _types_pb2.CommitCertificate
    def __init__(self, block: _Optional[_Union[_types_pb2.Block, _Mapping]] = ..., commit: _Optional[_Union[_types_pb2.CommitCertificate, _Mapping]] = ...) -> None: ...
