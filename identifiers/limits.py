"""Every size and count limit, with its unit in its name (DESIGN §2–§4)."""

from typing import Final

MAX_PREFIX_SEGMENTS: Final = 8
MAX_SUFFIX_BYTES: Final = 200
MAX_IDENTIFIER_BYTES: Final = 255
MAX_VALUES_PER_RECORD: Final = 64
MAX_VALUE_DATA_BYTES: Final = 16 * 1024
# a spark.meta JSON document may nest objects and arrays this deep: checked before parsing,
# so every validator decides the same way whatever its parser's recursion limit and stack
MAX_META_JSON_DEPTH: Final = 32
MAX_VALUE_TYPE_BYTES: Final = 128
MAX_RECORD_BYTES: Final = 64 * 1024
DEFAULT_VALUE_TTL_S: Final = 86400
MAX_BATCH_ITEMS: Final = 1000
MAX_REGISTRARS_PER_PREFIX: Final = 256
MAX_REVOKE_REASON_BYTES: Final = 1024
MAX_TX_BYTES: Final = 4 * 1024 * 1024
MAX_TX_EXPIRY_AHEAD_MS: Final = 60 * 60 * 1000
DEFAULT_TX_LIFETIME_MS: Final = 10 * 60 * 1000  # how long a tx the CLI builds stays valid
MAX_CHAIN_ID_BYTES: Final = 64
# membership (DESIGN §12, ledger/validators.py): a set's size (a certificate of that many
# signatures stays far below MAX_BUNDLE_CERTIFICATE_BYTES), a validator's name and the
# HOST:PORT it announces
MAX_VALIDATORS: Final = 128
MAX_VALIDATOR_NAME_CHARS: Final = 64
MAX_VALIDATOR_ADDRESS_BYTES: Final = 255
TEMPLATE_VALUE_INDEX: Final = 1001
FIRST_METADATA_VALUE_INDEX: Final = 2000
# metadata templates (ledger/templates.py, docs/templates.md): every validator checks every
# record that names a template, so a template is bounded in size (MAX_VALUE_DATA_BYTES), in
# how deep objects nest, in how many properties and enum members it lists, and its patterns
# in length and repeat counts (matching costs at most atoms x text length, never more)
MAX_TEMPLATE_DEPTH: Final = 4  # nested "object" properties below the template's own object
MAX_TEMPLATE_PROPERTIES: Final = 256  # properties in the whole template, nested ones included
MAX_TEMPLATE_ENUM_MEMBERS: Final = 256
MAX_TEMPLATE_PATTERN_CHARS: Final = 128
MAX_TEMPLATE_PATTERN_REPEAT: Final = 1000  # the largest m or n in {m,n}

# proof bundles (ledger/bundle.py, docs/proof-bundle.md): each part's decoded size, and the
# whole JSON document a verifier reads (a record's base64 and the views take most of it)
MAX_BUNDLE_JSON_BYTES: Final = 1024 * 1024
MAX_BUNDLE_HEADER_BYTES: Final = 1024  # a header is ~400 bytes with a 64-byte chain id
# the longest tree proof: kind and depth, 64 nodes each of its 2-byte slot map and up to 16
# hashes, and the other leaf's key and value hash (ledger/smt.py)
MAX_BUNDLE_STATE_PROOF_BYTES: Final = 2 + 64 * (2 + 16 * 32) + 64
MAX_BUNDLE_CERTIFICATE_BYTES: Final = 256 * 1024  # ~2,000 signatures
# validator-set changes one bundle carries (each a certified header and the new set)
MAX_BUNDLE_VALIDATOR_CHANGES: Final = 256
# integers in a bundle's views are JSON numbers: at most 2**53 - 1, exact in JavaScript
MAX_JSON_SAFE_INTEGER: Final = 2**53 - 1

# node defaults, each overridable in config.toml (node/config.py)
DEFAULT_PROPOSE_TIMEOUT_MS: Final = 1000
DEFAULT_PREVOTE_TIMEOUT_MS: Final = 500
DEFAULT_PRECOMMIT_TIMEOUT_MS: Final = 500
DEFAULT_TIMEOUT_DELTA_MS: Final = 250
DEFAULT_BLOCK_INTERVAL_MS: Final = 50
DEFAULT_EMPTY_BLOCK_INTERVAL_MS: Final = 10_000
DEFAULT_MAX_BLOCK_TXS: Final = 5000
DEFAULT_MAX_BLOCK_BYTES: Final = 8 * 1024 * 1024
DEFAULT_MEMPOOL_MAX_TXS: Final = 50_000
DEFAULT_MEMPOOL_MAX_BYTES: Final = 128 * 1024 * 1024
# [storage]: LevelDB's block cache and the state tree's cache of its upper levels (issue 15:
# together with LevelDB's memtables they are most of a node's steady memory)
DEFAULT_BLOCK_CACHE_MB: Final = 32
DEFAULT_TREE_CACHE_NODES: Final = 80_000  # the top 5 levels of a 16-ary tree: 69,905 nodes
MAX_BLOCK_CACHE_MB: Final = 64 * 1024
MAX_TREE_CACHE_NODES: Final = 50_000_000
# the most config.toml accepts for each (a typo like 1000000000000 must not start a node
# that waits for ages, or overflows the event loop's timer arithmetic)
MAX_CONSENSUS_TIMEOUT_MS: Final = 60_000  # propose/prevote/precommit timeouts and their delta
MAX_BLOCK_INTERVAL_MS: Final = 60_000
MAX_EMPTY_BLOCK_INTERVAL_MS: Final = 24 * 60 * 60 * 1000
MAX_BLOCK_TXS: Final = 100_000
# [ledger] keep_heights: at most this many heights' state trees are kept when pruning
MAX_LEDGER_KEEP_HEIGHTS: Final = 100_000_000
MAX_BLOCK_BYTES: Final = 16 * 1024 * 1024  # a proposal must fit MAX_PEER_MESSAGE_BYTES
MAX_MEMPOOL_TXS: Final = 10_000_000
MAX_MEMPOOL_BYTES: Final = 16 * 1024 * 1024 * 1024
DEFAULT_API_PORT: Final = 7100
DEFAULT_P2P_PORT: Final = 7200
DEFAULT_HTTP_PORT: Final = 7300  # the HTTP gateway of `spark init` and the dev chain
NODE_START_TIMEOUT_S: Final = 30.0  # launcher: wait this long for a started node to answer
NODE_STOP_GRACE_S: Final = 10.0  # launcher: SIGTERM, then SIGKILL after this long

# peer links and block sync (node/peers.py, node/sync.py)
# the largest legal peer message is a proposal of a block of MAX_BLOCK_BYTES of txs; on top:
# each tx's field tag and length (at most 5 bytes, counted as 8), the header, the last
# commit certificate and the proposal's own fields (256 KiB: a certificate of ~2,000 votes)
PEER_MESSAGE_FRAMING_BYTES: Final = MAX_BLOCK_TXS * 8 + 256 * 1024
MAX_PEER_MESSAGE_BYTES: Final = MAX_BLOCK_BYTES + PEER_MESSAGE_FRAMING_BYTES  # ~17 MiB
PEER_OUTBOUND_QUEUE_MESSAGES: Final = 4096
# observer links a node keeps open at once (validators' links are not counted): each costs
# a stream, its queue and a line in Status, and observers only follow heights here
MAX_OBSERVER_LINKS: Final = 32
PEER_HANDSHAKE_TIMEOUT_MS: Final = 5000
# how long the peer-port TLS certificates that `spark init` / `spark testnet init` write
# stay valid (node/tls.py); renewing them means issuing new ones from the network CA
TLS_CA_VALID_DAYS: Final = 20 * 365
TLS_NODE_CERT_VALID_DAYS: Final = 10 * 365
PEER_RECONNECT_MIN_MS: Final = 100
PEER_RECONNECT_MAX_MS: Final = 5000
GOSSIP_BATCH_INTERVAL_MS: Final = 50  # a batch per peer per 50 ms, not a message per tx
MAX_GOSSIP_BATCH_TXS: Final = 2000
MAX_GOSSIP_BATCH_BYTES: Final = 2 * 1024 * 1024
SYNC_RANGE_BLOCKS: Final = 256  # blocks asked for in one GetBlocks call
MAX_FUTURE_MESSAGES: Final = 10_000  # consensus messages buffered for the next heights
REBROADCAST_INTERVAL_MS: Final = 2000  # re-send own latest votes while a height is stuck
# while a peer stays at our height, every Nth stuck interval re-sends it every message of
# the height again, not only those it was not yet sent (node/driver.py relay)
RELAY_FULL_RESEND_INTERVALS: Final = 5
# a proposal waits at most this long for the tx signature checks running in the pool
PROPOSAL_POOL_WAIT_MS: Final = 250
PEER_KEEPALIVE_INTERVAL_MS: Final = 10_000  # HTTP/2 pings find a dead peer link
PEER_KEEPALIVE_TIMEOUT_MS: Final = 5000

# mempool and public API (node/mempool.py, node/events.py, node/api.py)
MEMPOOL_VERIFY_CHUNK_TXS: Final = 64  # signatures checked per thread-pool task
# with no fees, one signer's txs hold at most this share of mempool.max_txs and of
# mempool.max_bytes (12,500 txs and 32 MiB by default): a flood from one key cannot fill it
MEMPOOL_SIGNER_SHARE_PERCENT: Final = 25
# when several signers have txs waiting, one signer's txs take at most this many bytes of a
# block (always at least one tx): about 160 single Registers or one RegisterBatch of ~600
# identifiers. Without fees, a signer that floods the chain would otherwise make every block
# as large as the build budget allows, and every other signer's tx would wait through those
# blocks (issue 10, attack 2b: a one-signer flood took the workload's p99 from 0.1 s to 10 s).
# A signer alone gets the whole budget: a bulk load is not slowed when nobody else waits.
CONTENDED_SIGNER_BLOCK_BYTES: Final = 32 * 1024
# while other signers are active (a tx of theirs admitted within SIGNER_ACTIVE_WINDOW_MS),
# one signer's client txs are admitted at one node at most this fast (node/signer_rates.py);
# a RegisterBatch of 1,000 identifiers counts as one tx, so bulk loads are not held back
CONTENDED_SIGNER_TXS_PER_S: Final = 100
CONTENDED_SIGNER_BYTES_PER_S: Final = 256 * 1024
SIGNER_ACTIVE_WINDOW_MS: Final = 2000
DEFAULT_SUBMIT_WAIT_MS: Final = 30_000  # Submit(wait_for_commit) when timeout_ms is 0
MAX_SUBMIT_WAIT_MS: Final = 10 * 60 * 1000
# the API's HTTP/2 stream window, fixed (no BDP probing): what a client may send of a
# request past the receive limit before the refusal stops it, per call; and what bounds an
# upload's speed to a window per round trip (1 MiB per 50 ms: 20 MiB/s)
API_HTTP2_WINDOW_BYTES: Final = 1024 * 1024
# the pause before reading a SubmitStream's next request while the mempool refuses its txs
# for room (MEMPOOL_FULL, LIMIT_EXCEEDED): doubles from the first to the most per batch
# refused whole, halves per batch with a tx admitted (node/stream_pacing.py)
SUBMIT_STREAM_PACE_FIRST_S: Final = 0.01
SUBMIT_STREAM_PACE_MAX_S: Final = 1.0
SUBMIT_STREAM_WINDOW_TXS: Final = 4096  # SubmitStream requests in flight before reading pauses
DEFAULT_LIST_PAGE_SIZE: Final = 100
MAX_LIST_PAGE_SIZE: Final = 1000
# Watch (node/events.py): the committer appends a block's changes once to one shared log
# that every stream reads in its own task. The log keeps the newest block whole and at most
# this many changes of older blocks (~0.6 MB at a typical ~300 B a change, once per node,
# not per stream); a stream whose next change has left the log is closed and resumes with
# from_height. At the ~0.3 ms a stream message costs (DESIGN §7) a stream drains it in
# under a second: one further behind is not keeping up with the chain.
WATCH_BACKLOG_EVENTS: Final = 2048
# and at most this many bytes of them: a change carries its record, up to MAX_RECORD_BYTES,
# so 2048 changes alone could hold 128 MiB
WATCH_BACKLOG_BYTES: Final = 16 * 1024 * 1024
# a stream stuck writing to a client that does not read is found and closed this long after
# its next change left the log (one pass over the streams, off the commit path)
WATCH_SWEEP_INTERVAL_MS: Final = 1000
MAX_WATCH_STREAMS: Final = 1000  # open Watch streams on a node, all clients together
# from one client host (the address of context.peer() without its port); clients behind
# one NAT share it, so it is generous for one program and small against a flood
MAX_WATCH_STREAMS_PER_CLIENT: Final = 16
RECENT_COMMITS_REMEMBERED: Final = 100_000  # tx ids the CommitBus can still answer for

# what outsiders can make us write (identifiers/errors.py, node/logs.py)
# an error's message is cut to this (with "…" and the original length): it may quote input
MAX_ERROR_TEXT_CHARS: Final = 1024
# a line about refused input (malformed requests, a peer's bad messages): one per key
# (a gRPC method, a peer) per interval, the next one counting those left out
LOG_RATE_INTERVAL_MS: Final = 10_000
LOG_RATE_KEYS: Final = 1024  # keys remembered at once; the oldest is forgotten first

# identifier schemes (identifiers/oid.py)
# far above any OID in use (a 2.25.<UUID> OID is ~45); bounds the work of parsing one
MAX_OID_CHARS: Final = 1024
# what the API sends at most (a List page of large records); it receives far less, below
MAX_API_MESSAGE_BYTES: Final = 80 * 1024 * 1024
MAX_GET_BLOCKS_RANGE: Final = 1024  # blocks one GetBlocks call streams at most
SYNC_POLL_INTERVAL_MS: Final = 1000  # block sync re-checks peer heights this often

# snapshots and state sync (node/snapshots.py, node/state_sync.py; issue 13 part 4)
SNAPSHOT_CHUNK_BYTES: Final = 1024 * 1024  # a chunk closes at the first entry past this
# a background thread (writing a snapshot) sleeps this long after each this long of running,
# so it never holds the GIL long while the event loop waits for it (node/thread_pacing.py)
BACKGROUND_WORK_S: Final = 0.001
BACKGROUND_PAUSE_S: Final = 0.002
# a snapshot's tree nodes are put in key order in sorted parts of this many, then merged:
# one sort of a million nodes would hold the GIL for a second (node/snapshots.py)
SNAPSHOT_SORT_PART_NODES: Final = 16_384
DEFAULT_SNAPSHOT_INTERVAL_BLOCKS: Final = 1000  # [snapshots] interval; 0 takes none
MAX_SNAPSHOT_INTERVAL_BLOCKS: Final = 10_000_000
DEFAULT_SNAPSHOTS_KEPT: Final = 2  # [snapshots] keep (the one a node began from is kept too)
MAX_SNAPSHOTS_KEPT: Final = 100
MAX_SNAPSHOT_CHUNKS: Final = 1_000_000  # a manifest naming more is refused unread
MAX_SNAPSHOTS_LISTED: Final = 16  # manifests one ListSnapshots answer carries at most
# a node started with --state-sync asks its peers for snapshots this long before it gives
# up and block-syncs from the genesis instead
STATE_SYNC_DISCOVERY_MS: Final = 30_000
STATE_SYNC_RPC_TIMEOUT_MS: Final = 60_000  # one ListSnapshots, GetSnapshotChunk or GetBlocks

# consensus core (consensus/core.py); MAX_FUTURE_MESSAGES above bounds the next-height buffer
MAX_ROUNDS_AHEAD: Final = 1000  # messages for rounds further ahead of ours are dropped
MAX_PROPOSALS_PER_ROUND: Final = 4  # distinct signed proposals kept from one proposer
MAX_FUTURE_MESSAGES_PER_VALIDATOR: Final = 16  # next-height messages buffered per sender
MAX_FUTURE_PROPOSALS_PER_VALIDATOR: Final = 2  # of those, proposals (each a whole block)
SYNC_LAG_GRACE_MS: Final = 1000  # a validator one block behind waits this long for consensus
# a proposer builds at most what it can execute in this share of the propose timeout (its
# peers need about as long again to check the block); never less than MIN_PROPOSAL_BYTES
PROPOSAL_BUILD_BUDGET_PERCENT: Final = 40
MIN_PROPOSAL_BYTES: Final = 128 * 1024  # two RegisterBatch txs of 1,000 identifiers

# what outsiders can make the node hold (DESIGN §11; node/runtime.py, node/descriptors.py)
# The largest legal API request is a SubmitRequest holding one tx of MAX_TX_BYTES: its
# signature, field tags and lengths and the request's own fields fit in the framing with
# room to spare (every other request is a few KiB at most). A bigger one is refused with
# RESOURCE_EXHAUSTED by gRPC before it is read whole.
API_REQUEST_FRAMING_BYTES: Final = 64 * 1024
MAX_API_REQUEST_BYTES: Final = MAX_TX_BYTES + API_REQUEST_FRAMING_BYTES
# API calls served at once (streams included); the next gets RESOURCE_EXHAUSTED before its
# request is read. So unary request bytes in flight stay below
# MAX_API_CONCURRENT_RPCS × MAX_API_REQUEST_BYTES (~1 GiB).
MAX_API_CONCURRENT_RPCS: Final = 256
# SubmitStream requests read but not yet admitted, over all streams of a node: beyond,
# streams stop reading (flow control holds the client), so a stream's bytes in flight
# stay within this plus one request of its own
SUBMIT_STREAM_WINDOW_BYTES: Final = 32 * 1024 * 1024
# connections (each one descriptor): the API's is config.toml [api] max_connections
DEFAULT_API_MAX_CONNECTIONS: Final = 1024
MAX_API_CONNECTIONS: Final = 1_000_000  # the most config.toml accepts
# the HTTP gateway (node/gateway.py): a request line (method, path and query) longer than
# this is refused (400, aiohttp's "Got more than ... bytes") unread; headers are bounded by
# aiohttp's own 8190-byte limit
MAX_HTTP_REQUEST_LINE_BYTES: Final = 8192
DEFAULT_HTTP_PAGE_SIZE: Final = 100  # GET /api/handles?prefix=P without pageSize
MAX_HTTP_PAGE_SIZE: Final = 1000  # a larger pageSize is refused (400)
# GET /api/handles?prefix=P counts the handles under P in a thread, up to this many; above
# it, totalCount says "at least" this many (Handle.Net's totalCount is a string)
MAX_HTTP_COUNT_RECORDS: Final = 100_000
# connections the gateway serves at once: beyond, a request is answered 503 and its
# connection closed; pending connections queue in the kernel up to HTTP_BACKLOG
DEFAULT_HTTP_MAX_CONNECTIONS: Final = 1024
MAX_HTTP_CONNECTIONS: Final = 100_000
HTTP_BACKLOG: Final = 128
# the gateway keeps the encoded answers of plain resolves at the current height (node/
# answer_cache.py): at most this many, and this many bytes; a new height empties it
HTTP_ANSWER_CACHE_ENTRIES: Final = 16_384
HTTP_ANSWER_CACHE_BYTES: Final = 32 * 1024 * 1024
HTTP_KEEPALIVE_TIMEOUT_S: Final = 15.0  # an idle keep-alive connection is closed after this
# the explorer's JSON reads (node/gateway_explorer.py): a page of blocks, of a prefix's
# identifiers or of an account's holdings; history entries shown of one identifier
DEFAULT_EXPLORER_PAGE_SIZE: Final = 20
MAX_EXPLORER_PAGE_SIZE: Final = 100
MAX_EXPLORER_HISTORY_ENTRIES: Final = 200
# the search box's text and a page's start (`after`): longer is refused (400)
MAX_EXPLORER_QUERY_CHARS: Final = 1024
# GET /api/status walks back over stored certificates for each validator's last signed
# height, at most this many blocks (a validator silent for longer shows "not seen")
MAX_SIGNED_SCAN_BLOCKS: Final = 256
# GET /api/events: server-sent event streams open at once (beyond, 503 naming this limit);
# the newest blocks kept for a subscriber that fell behind; a comment line this often keeps
# idle proxies from closing the stream; a subscriber whose write does not finish within
# SSE_WRITE_TIMEOUT_S (a stuck reader) is dropped
MAX_SSE_SUBSCRIBERS: Final = 64
SSE_BACKLOG_BLOCKS: Final = 32
SSE_KEEPALIVE_INTERVAL_S: Final = 15.0
# how often an idle stream checks that its reader is still connected (frees its slot)
SSE_IDLE_CHECK_INTERVAL_S: Final = 1.0
SSE_WRITE_TIMEOUT_S: Final = 10.0
MAX_PEER_CONNECTIONS: Final = 256  # to the peer port: validators, observers, block sync
LEVELDB_MAX_OPEN_FILES: Final = 500  # LevelDB's table files open at once (node/storage.py)
# descriptors kept for everything else: LevelDB's log, manifest and lock, the durable
# writes of last_signed and the acknowledged height, the node's own dials to its peers, the
# listening sockets, gRPC's and the event loop's internal ones, logs
RESERVED_DESCRIPTORS: Final = 256
# at start the soft RLIMIT_NOFILE is raised to the hard one; when that is unlimited, to this
NOFILE_SOFT_LIMIT_WHEN_UNLIMITED: Final = 1024 * 1024
