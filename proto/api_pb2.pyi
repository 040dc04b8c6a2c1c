from sparkchain.proto import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorDetails(_message.Message):
    __slots__ = ("code", "message", "item_index")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ITEM_INDEX_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    item_index: int
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., item_index: _Optional[int] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("tx", "wait_for_commit", "timeout_ms")
    TX_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_COMMIT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    tx: _types_pb2.SignedTx
    wait_for_commit: bool
    timeout_ms: int
    def __init__(self, tx: _Optional[_Union[_types_pb2.SignedTx, _Mapping]] = ..., wait_for_commit: _Optional[bool] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("tx_id", "committed", "height", "index", "error_code", "error_message", "error_item_index")
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_ITEM_INDEX_FIELD_NUMBER: _ClassVar[int]
    tx_id: bytes
    committed: bool
    height: int
    index: int
    error_code: str
    error_message: str
    error_item_index: int
    def __init__(self, tx_id: _Optional[bytes] = ..., committed: _Optional[bool] = ..., height: _Optional[int] = ..., index: _Optional[int] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., error_item_index: _Optional[int] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("identifier", "types", "indexes", "with_proof")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    WITH_PROOF_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    types: _containers.RepeatedScalarFieldContainer[str]
    indexes: _containers.RepeatedScalarFieldContainer[int]
    with_proof: bool
    def __init__(self, identifier: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., indexes: _Optional[_Iterable[int]] = ..., with_proof: _Optional[bool] = ...) -> None: ...

class ResolveProof(_message.Message):
    __slots__ = ("record_bytes", "state_proof", "header", "commit")
    RECORD_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATE_PROOF_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    record_bytes: bytes
    state_proof: bytes
    header: bytes
    commit: _types_pb2.CommitCertificate
    def __init__(self, record_bytes: _Optional[bytes] = ..., state_proof: _Optional[bytes] = ..., header: _Optional[bytes] = ..., commit: _Optional[_Union[_types_pb2.CommitCertificate, _Mapping]] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("record", "height", "found", "proof")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    record: _types_pb2.Record
    height: int
    found: bool
    proof: ResolveProof
    def __init__(self, record: _Optional[_Union[_types_pb2.Record, _Mapping]] = ..., height: _Optional[int] = ..., found: _Optional[bool] = ..., proof: _Optional[_Union[ResolveProof, _Mapping]] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("identifier", "limit")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    limit: int
    def __init__(self, identifier: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("height", "time_ms", "tx_id", "operation", "signer", "record")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    height: int
    time_ms: int
    tx_id: bytes
    operation: str
    signer: str
    record: _types_pb2.Record
    def __init__(self, height: _Optional[int] = ..., time_ms: _Optional[int] = ..., tx_id: _Optional[bytes] = ..., operation: _Optional[str] = ..., signer: _Optional[str] = ..., record: _Optional[_Union[_types_pb2.Record, _Mapping]] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("prefix", "page_size", "page_token")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    page_size: int
    page_token: str
    def __init__(self, prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("records", "next_page_token")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_types_pb2.Record]
    next_page_token: str
    def __init__(self, records: _Optional[_Iterable[_Union[_types_pb2.Record, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PrefixInfoRequest(_message.Message):
    __slots__ = ("prefix",)
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    def __init__(self, prefix: _Optional[str] = ...) -> None: ...

class PrefixInfoResponse(_message.Message):
    __slots__ = ("prefix", "children")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    prefix: _types_pb2.PrefixRecord
    children: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, prefix: _Optional[_Union[_types_pb2.PrefixRecord, _Mapping]] = ..., children: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("prefix", "from_height")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    from_height: int
    def __init__(self, prefix: _Optional[str] = ..., from_height: _Optional[int] = ...) -> None: ...

class ChangeEvent(_message.Message):
    __slots__ = ("height", "tx_id", "operation", "identifier", "prefix", "record")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    height: int
    tx_id: bytes
    operation: str
    identifier: str
    prefix: str
    record: _types_pb2.Record
    def __init__(self, height: _Optional[int] = ..., tx_id: _Optional[bytes] = ..., operation: _Optional[str] = ..., identifier: _Optional[str] = ..., prefix: _Optional[str] = ..., record: _Optional[_Union[_types_pb2.Record, _Mapping]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PeerInfo(_message.Message):
    __slots__ = ("name", "address", "validator", "connected", "height")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    validator: bytes
    connected: bool
    height: int
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., validator: _Optional[bytes] = ..., connected: _Optional[bool] = ..., height: _Optional[int] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("chain_id", "height", "state_root", "last_block_hash", "last_block_time_ms", "role", "peers", "validator", "mempool_size", "version", "syncing")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    LAST_BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    LAST_BLOCK_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    MEMPOOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SYNCING_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    height: int
    state_root: bytes
    last_block_hash: bytes
    last_block_time_ms: int
    role: str
    peers: _containers.RepeatedCompositeFieldContainer[PeerInfo]
    validator: bytes
    mempool_size: int
    version: str
    syncing: bool
    def __init__(self, chain_id: _Optional[str] = ..., height: _Optional[int] = ..., state_root: _Optional[bytes] = ..., last_block_hash: _Optional[bytes] = ..., last_block_time_ms: _Optional[int] = ..., role: _Optional[str] = ..., peers: _Optional[_Iterable[_Union[PeerInfo, _Mapping]]] = ..., validator: _Optional[bytes] = ..., mempool_size: _Optional[int] = ..., version: _Optional[str] = ..., syncing: _Optional[bool] = ...) -> None: ...

class GetBlockRequest(_message.Message):
    __slots__ = ("height", "hash")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    height: int
    hash: bytes
    def __init__(self, height: _Optional[int] = ..., hash: _Optional[bytes] = ...) -> None: ...

class GetBlockResponse(_message.Message):
    __slots__ = ("block", "block_hash", "header", "commit")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    block: _types_pb2.Block
    block_hash: bytes
    header: _types_pb2.BlockHeader
    commit: _types_pb2.CommitCertificate
    def __init__(self, block: _Optional[_Union[_types_pb2.Block, _Mapping]] = ..., block_hash: _Optional[bytes] = ..., header: _Optional[_Union[_types_pb2.BlockHeader, _Mapping]] = ..., commit: _Optional[_Union[_types_pb2.CommitCertificate, _Mapping]] = ...) -> None: ...

class GetTxRequest(_message.Message):
    __slots__ = ("tx_id",)
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    tx_id: bytes
    def __init__(self, tx_id: _Optional[bytes] = ...) -> None: ...

class GetTxResponse(_message.Message):
    __slots__ = ("tx", "tx_id", "height", "index")
    TX_FIELD_NUMBER: _ClassVar[int]
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    tx: _types_pb2.SignedTx
    tx_id: bytes
    height: int
    index: int
    def __init__(self, tx: _Optional[_Union[_types_pb2.SignedTx, _Mapping]] = ..., tx_id: _Optional[bytes] = ..., height: _Optional[int] = ..., index: _Optional[int] = ...) -> None: ...

class GenesisRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GenesisResponse(_message.Message):
    __slots__ = ("genesis_json",)
    GENESIS_JSON_FIELD_NUMBER: _ClassVar[int]
    genesis_json: bytes
    def __init__(self, genesis_json: _Optional[bytes] = ...) -> None: ...
