"""Sans-I/O Tendermint BFT consensus (DESIGN §6): the core, its messages and certificates.

The node drives `ConsensusCore` with messages and timer expiries and executes the effects
it returns, in order. `consensus.wire` converts messages to and from protobuf;
`consensus.sim` is the deterministic fault simulator.
"""

from sparkchain.consensus.app import Application, TimeoutConfig
from sparkchain.consensus.certificate import (
    build_certificate,
    quorum_size,
    skip_threshold,
    verify_certificate,
    verify_evidence,
)
from sparkchain.consensus.core import ConsensusCore
from sparkchain.consensus.crypto import Ed25519Signer, Ed25519Verifier, Signer, Verifier
from sparkchain.consensus.lastsigned import LastSigned
from sparkchain.consensus.messages import (
    NIL,
    Broadcast,
    Commit,
    CommitCertificate,
    CommitSig,
    Effect,
    Evidence,
    EvidenceFound,
    Message,
    PersistLastSigned,
    Proposal,
    ScheduleTimeout,
    Step,
    Timeout,
    Vote,
    VoteType,
)

__all__ = [
    "NIL",
    "Application",
    "Broadcast",
    "Commit",
    "CommitCertificate",
    "CommitSig",
    "ConsensusCore",
    "Ed25519Signer",
    "Ed25519Verifier",
    "Effect",
    "Evidence",
    "EvidenceFound",
    "LastSigned",
    "Message",
    "PersistLastSigned",
    "Proposal",
    "ScheduleTimeout",
    "Signer",
    "Step",
    "Timeout",
    "TimeoutConfig",
    "Verifier",
    "Vote",
    "VoteType",
    "build_certificate",
    "quorum_size",
    "skip_threshold",
    "verify_certificate",
    "verify_evidence",
]
