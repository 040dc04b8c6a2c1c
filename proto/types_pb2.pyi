from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecordStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECORD_STATUS_UNSPECIFIED: _ClassVar[RecordStatus]
    ACTIVE: _ClassVar[RecordStatus]
    REVOKED: _ClassVar[RecordStatus]

class VoteType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOTE_TYPE_UNSPECIFIED: _ClassVar[VoteType]
    PREVOTE: _ClassVar[VoteType]
    PRECOMMIT: _ClassVar[VoteType]
RECORD_STATUS_UNSPECIFIED: RecordStatus
ACTIVE: RecordStatus
REVOKED: RecordStatus
VOTE_TYPE_UNSPECIFIED: VoteType
PREVOTE: VoteType
PRECOMMIT: VoteType

class Value(_message.Message):
    __slots__ = ("index", "type", "data", "ttl", "timestamp_ms")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    index: int
    type: str
    data: bytes
    ttl: int
    timestamp_ms: int
    def __init__(self, index: _Optional[int] = ..., type: _Optional[str] = ..., data: _Optional[bytes] = ..., ttl: _Optional[int] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("identifier", "key", "owner", "status", "created_height", "created_time_ms", "updated_height", "updated_time_ms", "values", "revoke_reason")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    REVOKE_REASON_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    key: str
    owner: str
    status: RecordStatus
    created_height: int
    created_time_ms: int
    updated_height: int
    updated_time_ms: int
    values: _containers.RepeatedCompositeFieldContainer[Value]
    revoke_reason: str
    def __init__(self, identifier: _Optional[str] = ..., key: _Optional[str] = ..., owner: _Optional[str] = ..., status: _Optional[_Union[RecordStatus, str]] = ..., created_height: _Optional[int] = ..., created_time_ms: _Optional[int] = ..., updated_height: _Optional[int] = ..., updated_time_ms: _Optional[int] = ..., values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ..., revoke_reason: _Optional[str] = ...) -> None: ...

class PrefixRecord(_message.Message):
    __slots__ = ("prefix", "key", "owner", "registrars", "created_height", "updated_height")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    REGISTRARS_FIELD_NUMBER: _ClassVar[int]
    CREATED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    key: str
    owner: str
    registrars: _containers.RepeatedScalarFieldContainer[str]
    created_height: int
    updated_height: int
    def __init__(self, prefix: _Optional[str] = ..., key: _Optional[str] = ..., owner: _Optional[str] = ..., registrars: _Optional[_Iterable[str]] = ..., created_height: _Optional[int] = ..., updated_height: _Optional[int] = ...) -> None: ...

class CreatePrefix(_message.Message):
    __slots__ = ("prefix", "owner")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    owner: str
    def __init__(self, prefix: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class SetRegistrars(_message.Message):
    __slots__ = ("prefix", "add", "remove")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    ADD_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    add: _containers.RepeatedScalarFieldContainer[str]
    remove: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, prefix: _Optional[str] = ..., add: _Optional[_Iterable[str]] = ..., remove: _Optional[_Iterable[str]] = ...) -> None: ...

class TransferPrefix(_message.Message):
    __slots__ = ("prefix", "new_owner")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NEW_OWNER_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    new_owner: str
    def __init__(self, prefix: _Optional[str] = ..., new_owner: _Optional[str] = ...) -> None: ...

class Register(_message.Message):
    __slots__ = ("identifier", "values", "owner")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    values: _containers.RepeatedCompositeFieldContainer[Value]
    owner: str
    def __init__(self, identifier: _Optional[str] = ..., values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ..., owner: _Optional[str] = ...) -> None: ...

class BatchItem(_message.Message):
    __slots__ = ("suffix", "values")
    SUFFIX_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    suffix: str
    values: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, suffix: _Optional[str] = ..., values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class RegisterBatch(_message.Message):
    __slots__ = ("prefix", "items", "owner")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    items: _containers.RepeatedCompositeFieldContainer[BatchItem]
    owner: str
    def __init__(self, prefix: _Optional[str] = ..., items: _Optional[_Iterable[_Union[BatchItem, _Mapping]]] = ..., owner: _Optional[str] = ...) -> None: ...

class Update(_message.Message):
    __slots__ = ("identifier", "upsert", "remove_indexes")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    UPSERT_FIELD_NUMBER: _ClassVar[int]
    REMOVE_INDEXES_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    upsert: _containers.RepeatedCompositeFieldContainer[Value]
    remove_indexes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, identifier: _Optional[str] = ..., upsert: _Optional[_Iterable[_Union[Value, _Mapping]]] = ..., remove_indexes: _Optional[_Iterable[int]] = ...) -> None: ...

class Transfer(_message.Message):
    __slots__ = ("identifier", "new_owner")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    NEW_OWNER_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    new_owner: str
    def __init__(self, identifier: _Optional[str] = ..., new_owner: _Optional[str] = ...) -> None: ...

class Revoke(_message.Message):
    __slots__ = ("identifier", "reason")
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    identifier: str
    reason: str
    def __init__(self, identifier: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TxBody(_message.Message):
    __slots__ = ("chain_id", "nonce", "expires_at_ms", "create_prefix", "set_registrars", "transfer_prefix", "register", "register_batch", "update", "transfer", "revoke")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CREATE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    SET_REGISTRARS_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_PREFIX_FIELD_NUMBER: _ClassVar[int]
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    REGISTER_BATCH_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    REVOKE_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    nonce: int
    expires_at_ms: int
    create_prefix: CreatePrefix
    set_registrars: SetRegistrars
    transfer_prefix: TransferPrefix
    register: Register
    register_batch: RegisterBatch
    update: Update
    transfer: Transfer
    revoke: Revoke
    def __init__(self, chain_id: _Optional[str] = ..., nonce: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., create_prefix: _Optional[_Union[CreatePrefix, _Mapping]] = ..., set_registrars: _Optional[_Union[SetRegistrars, _Mapping]] = ..., transfer_prefix: _Optional[_Union[TransferPrefix, _Mapping]] = ..., register: _Optional[_Union[Register, _Mapping]] = ..., register_batch: _Optional[_Union[RegisterBatch, _Mapping]] = ..., update: _Optional[_Union[Update, _Mapping]] = ..., transfer: _Optional[_Union[Transfer, _Mapping]] = ..., revoke: _Optional[_Union[Revoke, _Mapping]] = ...) -> None: ...

class SignedTx(_message.Message):
    __slots__ = ("body", "signer", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signer: bytes
    signature: bytes
    def __init__(self, body: _Optional[bytes] = ..., signer: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class BlockHeader(_message.Message):
    __slots__ = ("chain_id", "height", "time_ms", "prev_hash", "last_commit_hash", "tx_root", "state_root", "validators_hash", "proposer")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMIT_HASH_FIELD_NUMBER: _ClassVar[int]
    TX_ROOT_FIELD_NUMBER: _ClassVar[int]
    STATE_ROOT_FIELD_NUMBER: _ClassVar[int]
    VALIDATORS_HASH_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_FIELD_NUMBER: _ClassVar[int]
    chain_id: str
    height: int
    time_ms: int
    prev_hash: bytes
    last_commit_hash: bytes
    tx_root: bytes
    state_root: bytes
    validators_hash: bytes
    proposer: bytes
    def __init__(self, chain_id: _Optional[str] = ..., height: _Optional[int] = ..., time_ms: _Optional[int] = ..., prev_hash: _Optional[bytes] = ..., last_commit_hash: _Optional[bytes] = ..., tx_root: _Optional[bytes] = ..., state_root: _Optional[bytes] = ..., validators_hash: _Optional[bytes] = ..., proposer: _Optional[bytes] = ...) -> None: ...

class Block(_message.Message):
    __slots__ = ("header", "txs", "last_commit")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TXS_FIELD_NUMBER: _ClassVar[int]
    LAST_COMMIT_FIELD_NUMBER: _ClassVar[int]
    header: bytes
    txs: _containers.RepeatedCompositeFieldContainer[SignedTx]
    last_commit: CommitCertificate
    def __init__(self, header: _Optional[bytes] = ..., txs: _Optional[_Iterable[_Union[SignedTx, _Mapping]]] = ..., last_commit: _Optional[_Union[CommitCertificate, _Mapping]] = ...) -> None: ...

class Vote(_message.Message):
    __slots__ = ("type", "height", "round", "block_hash", "validator", "signature")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    type: VoteType
    height: int
    round: int
    block_hash: bytes
    validator: bytes
    signature: bytes
    def __init__(self, type: _Optional[_Union[VoteType, str]] = ..., height: _Optional[int] = ..., round: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., validator: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Proposal(_message.Message):
    __slots__ = ("height", "round", "valid_round", "block_hash", "block", "proposer", "signature")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    VALID_ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    height: int
    round: int
    valid_round: int
    block_hash: bytes
    block: bytes
    proposer: bytes
    signature: bytes
    def __init__(self, height: _Optional[int] = ..., round: _Optional[int] = ..., valid_round: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., block: _Optional[bytes] = ..., proposer: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CommitSig(_message.Message):
    __slots__ = ("validator", "signature")
    VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    validator: bytes
    signature: bytes
    def __init__(self, validator: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CommitCertificate(_message.Message):
    __slots__ = ("height", "round", "block_hash", "signatures")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    height: int
    round: int
    block_hash: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[CommitSig]
    def __init__(self, height: _Optional[int] = ..., round: _Optional[int] = ..., block_hash: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[CommitSig, _Mapping]]] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("first", "second")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    first: Vote
    second: Vote
    def __init__(self, first: _Optional[_Union[Vote, _Mapping]] = ..., second: _Optional[_Union[Vote, _Mapping]] = ...) -> None: ...
