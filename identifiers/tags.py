"""Every domain-separation tag used for signing and hashing, in one place.

A signature or hash made for one purpose can never be replayed as another because each
purpose prepends its own tag. No tag is a prefix of another (tests check it).
"""

from typing import Final

# signatures
TX_TAG: Final = b"spark/tx/v1"
VOTE_TAG: Final = b"spark/vote/v1"
PROPOSAL_TAG: Final = b"spark/proposal/v1"
PEER_HANDSHAKE_TAG: Final = b"spark/peer-handshake/v1"
# a validator's approval of a governance tx body (UpdateValidators, DESIGN §12)
GOVERNANCE_TAG: Final = b"spark/governance/v1"

# hashing (single bytes, RFC 6962 style, for Merkle trees)
MERKLE_LEAF: Final = b"\x00"
MERKLE_NODE: Final = b"\x01"
SMT_LEAF: Final = b"\x02"
SMT_NODE: Final = b"\x03"
# a state snapshot's chunk, named by SHA-256(tag || chunk) in its manifest (node/snapshots.py)
SNAPSHOT_CHUNK_TAG: Final = b"spark/snapshot-chunk/v1"

SIGNING_TAGS: Final = (TX_TAG, VOTE_TAG, PROPOSAL_TAG, PEER_HANDSHAKE_TAG, GOVERNANCE_TAG)

# state tree namespaces: the tree key of a record or prefix is
# SHA-256(len(namespace) || namespace || key) (ledger/smt.py `tree_key`); a client recomputes
# it from the identifier alone to check a proof, so these bytes are part of the protocol
TREE_RECORD_NAMESPACE: Final = b"r"
TREE_PREFIX_NAMESPACE: Final = b"p"
# the validator schedule (ledger/validators.py) is one leaf: this namespace, key
# TREE_VALIDATORS_KEY; absent until the set first changes (the genesis set then)
TREE_VALIDATORS_NAMESPACE: Final = b"v"
TREE_VALIDATORS_KEY: Final = b"schedule"

# hashing of the genesis file's canonical form (ledger/genesis.py)
GENESIS_TAG: Final = b"spark/genesis/v1"
