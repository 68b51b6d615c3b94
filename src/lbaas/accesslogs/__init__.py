"""Access logs: HAProxy's flow log received, routed to streams, kept, pruned and read back.

Each load balancer whose ``logging.enabled`` is true sends one JSON line per connection (TCP
listeners) or request (HTTP listeners) through a ring buffer of its HAProxy to a UNIX stream
socket of lbaas (:mod:`.receiver`), which appends it to a stream under
``$LBAAS_DATA_DIR/logs`` and keeps it for the LB's ``retention_policy.period`` days
(:mod:`.store`). ``lbaas logs`` reads them.
Where the files are, what a line holds and what Gcore's LaaS does that this does not:
docs/logging.md.
"""

from __future__ import annotations

from lbaas.accesslogs.receiver import AccessLogReceiver, receiver_for
from lbaas.accesslogs.store import DEFAULT_RETENTION_DAYS, LogStore, parse_since

__all__ = ["DEFAULT_RETENTION_DAYS", "AccessLogReceiver", "LogStore", "parse_since", "receiver_for"]
