"""File descriptors (DESIGN §11): every connection to the API or the peer port holds one,
and so do LevelDB's table files and the durable writes of the validator's last-signed
record. Without a bound, enough idle connections take the last descriptor and the
validator can no longer record what it signs (EMFILE), so it stops signing.

At start the node raises its soft RLIMIT_NOFILE to the hard limit, then splits it:

    soft limit = LevelDB's files + reserved descriptors + peer connections + API connections

The peer port gets MAX_PEER_CONNECTIONS, or half of what is left when that is less; the
API gets `[api] max_connections`, or what is left after that. gRPC closes a connection
beyond its server's cap as soon as it is accepted (grpc.max_allowed_incoming_connections).
A soft limit too small for LevelDB's files and the reserve is INVALID_CONFIG: the node
does not start rather than fail on its first busy minute. The `started` log line says what
was set.

Not bounded here: connections per client (gRPC has no such option; a firewall rule such as
iptables `connlimit` does it), and descriptors the node opens itself beyond the reserve.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
from dataclasses import dataclass

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.limits import (
    LEVELDB_MAX_OPEN_FILES,
    MAX_PEER_CONNECTIONS,
    NOFILE_SOFT_LIMIT_WHEN_UNLIMITED,
    RESERVED_DESCRIPTORS,
)

log = logging.getLogger("spark.node")

_FIXED_DESCRIPTORS = LEVELDB_MAX_OPEN_FILES + RESERVED_DESCRIPTORS
_MIN_CONNECTIONS = 2  # per server: one client and one more


@dataclass(frozen=True, slots=True)
class DescriptorBudget:
    soft_limit: int
    api_connections: int
    peer_connections: int
    soft_limit_before: int = 0  # what the node found at start, before raising it


def plan_descriptors(soft_limit: int, api_max_connections: int) -> DescriptorBudget:
    """How many connections each server may hold under `soft_limit` (module docstring)."""
    left = soft_limit - _FIXED_DESCRIPTORS
    if left < 2 * _MIN_CONNECTIONS:
        raise SparkError(
            ErrorCode.INVALID_CONFIG,
            f"the open-files limit is {soft_limit}: the node needs at least "
            f"{_FIXED_DESCRIPTORS + 2 * _MIN_CONNECTIONS} ({LEVELDB_MAX_OPEN_FILES} for "
            f"LevelDB, {RESERVED_DESCRIPTORS} in reserve, and connections); raise the hard "
            "limit (`ulimit -Hn`, LimitNOFILE= in a systemd unit)",
        )
    peer = min(MAX_PEER_CONNECTIONS, left // 2)
    return DescriptorBudget(soft_limit, min(api_max_connections, left - peer), peer, soft_limit)


def raise_soft_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (to NOFILE_SOFT_LIMIT_WHEN_UNLIMITED
    when that is unlimited); (the soft limit before, the soft limit now)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = NOFILE_SOFT_LIMIT_WHEN_UNLIMITED if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:  # e.g. above fs.nr_open: keep what we have
            log.warning("open_files_limit_not_raised", extra={"to": target, "error": str(exc)})
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def descriptor_budget(api_max_connections: int) -> DescriptorBudget:
    """Raise the soft limit and plan under it; the runtime logs the plan with `started`."""
    before, soft = raise_soft_limit()
    if soft == resource.RLIM_INFINITY:
        soft = NOFILE_SOFT_LIMIT_WHEN_UNLIMITED
    budget = plan_descriptors(soft, api_max_connections)
    return dataclasses.replace(budget, soft_limit_before=before)
