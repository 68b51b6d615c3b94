"""The schema, as SQLAlchemy Core tables: the only place that names columns.

Every resource of a load balancer carries its ``lb_id`` so that one
query finds the whole tree and one lock key (the LB id) orders all work on
it. ``task_id`` is the task currently holding a row; ``creator_task_id``
never changes after creation.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(36)


def _lifecycle() -> list[Column]:
    """Columns every provisioned resource has."""
    return [
        Column("provisioning_status", String(16), nullable=False),
        Column("operating_status", String(16), nullable=False),
        Column("task_id", ID),
        Column("creator_task_id", ID),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime),
    ]


def _scope() -> list[Column]:
    return [
        Column("project_id", Integer, nullable=False),
        Column("region_id", Integer, nullable=False),
    ]


regions = Table(
    "regions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(255), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("client_id", Integer, nullable=False),
    Column("name", String(63), nullable=False),
    Column("description", String(255)),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("state", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("deleted_at", DateTime),
    Column("task_id", ID),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("project_id", Integer),  # NULL: admin key, every project
    Column("user_id", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
)

load_balancers = Table(
    "load_balancers",
    metadata,
    Column("id", ID, primary_key=True),
    *_scope(),
    Column("name", String(63), nullable=False),
    Column("flavor", String(32)),
    Column("vip_address", String(45), unique=True),
    Column("vip_port_id", ID, nullable=False),
    Column("vip_ip_family", String(8)),
    Column("vip_network_id", ID),
    Column("vip_subnet_id", ID),
    Column("preferred_connectivity", String(2), nullable=False),
    Column("admin_state_up", Boolean, nullable=False),
    Column("logging", JSON),
    Column("logging_enabled", Boolean, nullable=False),
    *_lifecycle(),
    Index("ix_lb_scope_created", "project_id", "region_id", "created_at", "id"),
)

tags = Table(
    "tags",
    metadata,
    Column("resource_id", ID, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", String(255), nullable=False),
    Column("read_only", Boolean, nullable=False),
    Column("resource_type", String(32), nullable=False),
    Index("ix_tags_key_value", "key", "value"),
)


def _lb_fk() -> ForeignKey:
    return ForeignKey("load_balancers.id", ondelete="CASCADE")


listeners = Table(
    "listeners",
    metadata,
    Column("id", ID, primary_key=True),
    Column("lb_id", ID, _lb_fk(), nullable=False, index=True),
    *_scope(),
    Column("name", String(63), nullable=False),
    Column("protocol", String(20), nullable=False),
    Column("protocol_port", Integer, nullable=False),
    Column("admin_state_up", Boolean, nullable=False),
    Column("connection_limit", Integer, nullable=False),
    Column("allowed_cidrs", JSON),
    Column("insert_x_forwarded", Boolean, nullable=False),
    Column("secret_id", String(36)),
    Column("sni_secret_id", JSON),
    Column("timeout_client_data", BigInteger),
    Column("timeout_member_connect", BigInteger),
    Column("timeout_member_data", BigInteger),
    Column("user_list", JSON, nullable=False),
    *_lifecycle(),
)

pools = Table(
    "pools",
    metadata,
    Column("id", ID, primary_key=True),
    Column("lb_id", ID, _lb_fk(), nullable=False, index=True),
    *_scope(),
    Column("listener_id", ID, ForeignKey("listeners.id", ondelete="SET NULL"), index=True),
    Column("name", String(63), nullable=False),
    Column("protocol", String(16), nullable=False),
    Column("lb_algorithm", String(20), nullable=False),
    Column("admin_state_up", Boolean, nullable=False),
    Column("session_persistence", JSON),
    Column("ca_secret_id", ID),
    Column("crl_secret_id", ID),
    Column("secret_id", ID),
    Column("timeout_client_data", BigInteger),
    Column("timeout_member_connect", BigInteger),
    Column("timeout_member_data", BigInteger),
    *_lifecycle(),
)

members = Table(
    "members",
    metadata,
    Column("id", ID, primary_key=True),
    Column("pool_id", ID, ForeignKey("pools.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("lb_id", ID, _lb_fk(), nullable=False, index=True),
    *_scope(),
    Column("address", String(45), nullable=False),
    Column("protocol_port", Integer, nullable=False),
    Column("weight", Integer, nullable=False),
    Column("backup", Boolean, nullable=False),
    Column("admin_state_up", Boolean, nullable=False),
    Column("monitor_address", String(45)),
    Column("monitor_port", Integer),
    Column("subnet_id", ID),
    Column("instance_id", ID),
    *_lifecycle(),
)

health_monitors = Table(
    "health_monitors",
    metadata,
    Column("id", ID, primary_key=True),
    Column("pool_id", ID, ForeignKey("pools.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("lb_id", ID, _lb_fk(), nullable=False, index=True),
    *_scope(),
    Column("type", String(16), nullable=False),
    Column("delay", Integer, nullable=False),
    Column("timeout", Integer, nullable=False),
    Column("max_retries", Integer, nullable=False),
    Column("max_retries_down", Integer, nullable=False),
    Column("admin_state_up", Boolean, nullable=False),
    Column("http_method", String(8)),
    Column("url_path", String(2048)),
    Column("expected_codes", String(255)),
    Column("http_version", String(4)),
    Column("domain_name", String(253)),
    *_lifecycle(),
)

l7_policies = Table(
    "l7_policies",
    metadata,
    Column("id", ID, primary_key=True),
    Column("listener_id", ID, ForeignKey("listeners.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("lb_id", ID, _lb_fk(), nullable=False, index=True),
    *_scope(),
    Column("name", String(255), nullable=False),
    Column("action", String(20), nullable=False),
    Column("position", Integer, nullable=False),
    Column("redirect_url", String(2048)),
    Column("redirect_prefix", String(2048)),
    Column("redirect_pool_id", ID),
    Column("redirect_http_code", Integer),
    Column("tags", JSON, nullable=False),
    *_lifecycle(),
)

l7_rules = Table(
    "l7_rules",
    metadata,
    Column("id", ID, primary_key=True),
    Column("policy_id", ID, ForeignKey("l7_policies.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("lb_id", ID, _lb_fk(), nullable=False, index=True),
    *_scope(),
    Column("type", String(20), nullable=False),
    Column("compare_type", String(16), nullable=False),
    Column("key", String(255)),
    Column("value", String(255), nullable=False),
    Column("invert", Boolean, nullable=False),
    Column("tags", JSON, nullable=False),
    *_lifecycle(),
)

floating_ips = Table(
    "floating_ips",
    metadata,
    Column("id", ID, primary_key=True),
    *_scope(),
    Column("floating_ip_address", String(45), nullable=False, unique=True),
    Column("fixed_ip_address", String(45)),
    Column("port_id", ID),
    Column("lb_id", ID, ForeignKey("load_balancers.id", ondelete="SET NULL"), index=True),
    Column("router_id", ID),
    Column("status", String(8), nullable=False),
    Column("task_id", ID),
    Column("creator_task_id", ID),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

secrets = Table(
    "secrets",
    metadata,
    Column("id", ID, primary_key=True),
    *_scope(),
    Column("name", String(255), nullable=False),
    Column("secret_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("algorithm", String(16)),
    Column("bit_length", Integer),
    Column("mode", String(16)),
    Column("content_types", JSON),
    Column("expiration", DateTime),
    Column("payload", Text),  # encrypted at rest (lbaas.certs.SecretBox)
    Column("task_id", ID),
    Column("creator_task_id", ID),
    Column("created_at", DateTime, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    # seq gives the FIFO order of a lock's queue; id is the public UUID.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", ID, nullable=False, unique=True),
    Column("task_type", String(64), nullable=False),
    Column("state", String(10), nullable=False),
    Column("lock_key", String(64), nullable=False),
    Column("project_id", Integer),
    Column("region_id", Integer),
    Column("user_id", Integer, nullable=False),
    Column("client_id", Integer),
    Column("request_id", String(64)),
    Column("args", JSON, nullable=False),
    Column("planned_resources", JSON, nullable=False),
    Column("created_resources", JSON),
    Column("data", JSON),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("worker_id", String(64)),
    Column("lease_expires_at", DateTime),
    Column("created_on", DateTime, nullable=False),
    Column("updated_on", DateTime),
    Column("finished_on", DateTime),
    Column("acknowledged_at", DateTime),
    Column("acknowledged_by", Integer),
    # A NEW task is not claimed before run_after (retry back-off).
    Column("run_after", DateTime),
    # Set when even failing the task raised: it reads ERROR, its queue moved on.
    Column("set_aside_at", DateTime),
    # Queued by lbaas for itself (never listed by the tasks API).
    Column("internal", Boolean, nullable=False, default=False, server_default=sa_false()),
    Index("ix_tasks_state_lock", "state", "lock_key", "seq"),
    Index("ix_tasks_lock_seq", "lock_key", "seq"),
    Index("ix_tasks_project_created", "project_id", "created_on"),
)

idempotency = Table(
    "idempotency",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("principal", Integer, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_idem_lookup", "principal", "fingerprint", "created_at"),
)

address_pools = Table(
    "address_pools",
    metadata,
    Column("name", String(16), primary_key=True),
    Column("next_index", Integer, nullable=False),
)

released_addresses = Table(
    "released_addresses",
    metadata,
    Column("pool", String(16), primary_key=True),
    Column("address", String(45), primary_key=True),
    Column("released_at", DateTime, nullable=False),
    UniqueConstraint("pool", "address", name="uq_released_pool_address"),
)

quotas = Table(
    "quotas",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("limit", Integer, nullable=False),
)

# Tables whose rows belong to a load balancer and follow the task lifecycle.
LB_CHILDREN = (listeners, pools, members, health_monitors, l7_policies, l7_rules)

# -- the data plane's side: what it took, and what it reports ---------------------
dataplane_state = Table(
    "dataplane_state",
    metadata,
    Column("lb_id", ID, ForeignKey("load_balancers.id", ondelete="CASCADE"), primary_key=True),
    # The last snapshot the data plane took (LoadBalancerSnapshot.to_dict, no key material).
    Column("applied", JSON),
    Column("applied_at", DateTime),
    # Observed by the poller: is the data plane up, and why not.
    Column("running", Boolean),
    Column("reason", Text),
    Column("observed_at", DateTime),
    # Counters: the accumulator's state (monotonic across reloads) and current totals.
    Column("counters", JSON),
    Column("stats", JSON),
)

member_health = Table(
    "member_health",
    metadata,
    Column("member_id", ID, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("lb_id", ID, ForeignKey("load_balancers.id", ondelete="CASCADE"), nullable=False, index=True),
    # Raw health (UP, DOWN, DRAIN, MAINT, NO_CHECK) and the last check's explanation.
    Column("health", String(10), nullable=False),
    Column("check_status", String(16)),
    Column("check_code", Integer),
    Column("check_desc", String(255)),
    Column("check_duration_ms", Integer),
    Column("changed_at", DateTime, nullable=False),
)

# One row per load balancer per sampling interval (lbaas.domain.metrics): averages over
# [interval_start, interval_start + interval_seconds). Written by the sampler, pruned after
# RETENTION_DAYS, read by POST .../metrics.
lb_metrics = Table(
    "lb_metrics",
    metadata,
    Column("lb_id", ID, ForeignKey("load_balancers.id", ondelete="CASCADE"), primary_key=True),
    # UTC epoch seconds: the start of the interval (a multiple of the sampling interval).
    Column("interval_start", BigInteger, primary_key=True, autoincrement=False),
    Column("interval_seconds", Float, nullable=False),
    Column("cpu_util", Float),  # %
    Column("memory_util", Float),  # %
    Column("network_bps_ingress", Float),  # bits per second
    Column("network_bps_egress", Float),  # bits per second
    Index("ix_lb_metrics_interval_start", "interval_start"),
)

# -- Emulator controls (lbaas.emulator; only used when the controls are on) ---------------------

# One row (id 1): a version bumped by every change of a control, so each process can keep the
# controls in memory and notice a change with one primary-key read; and the journal's size.
emulator_state = Table(
    "emulator_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("journal_size", Integer, nullable=False),
)

# Injected faults: kind http | latency | task | health. Scope columns left NULL match anything.
emulator_faults = Table(
    "emulator_faults",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("project_id", Integer),
    Column("task_type", String(64)),
    Column("method", String(8)),
    Column("path_regex", String(1024)),
    Column("status", Integer),
    Column("message", Text),
    Column("retry_after", Float),
    Column("latency_ms", Integer),
    Column("latency_max_ms", Integer),
    Column("target_kind", String(8)),  # health: member | pool
    Column("target_id", ID),
    Column("lb_id", ID),
    Column("health", String(16)),
    Column("remaining", Integer),  # NULL: no limit
    Column("probability", Float),  # NULL: always
    Column("seed", BigInteger),
    Column("draws", Integer, nullable=False),
    Column("injected", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

# Task timing rules; project_id 0 and task_type "*" are the wildcards (most specific rule wins).
emulator_timing = Table(
    "emulator_timing",
    metadata,
    Column("project_id", Integer, primary_key=True, autoincrement=False),
    Column("task_type", String(64), primary_key=True),
    Column("mode", String(16), nullable=False),  # immediate | delay | polls | hold
    Column("delay_ms", Integer),
    Column("delay_max_ms", Integer),
    Column("polls", Integer),
    Column("seed", BigInteger),
    Column("draws", Integer, nullable=False),
)

# Tasks the timing controls keep from running: until released (polls_left NULL) or polled enough.
emulator_held_tasks = Table(
    "emulator_held_tasks",
    metadata,
    Column("task_id", ID, primary_key=True),
    Column("project_id", Integer),
    Column("mode", String(16), nullable=False),
    Column("polls_left", Integer),
    Column("created_at", DateTime, nullable=False),
)

# The request journal: the last ``emulator_state.journal_size`` requests, bodies redacted.
emulator_journal = Table(
    "emulator_journal",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("method", String(8), nullable=False),
    Column("path", String(2048), nullable=False),
    Column("query", Text),
    Column("status", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("retry_count", Integer),
    Column("request_id", String(64)),
    Column("project_id", Integer),
    Column("injected_fault", Integer),
    Column("user_agent", String(255)),
    Column("request_body", Text),
    Column("response_body", Text),
    Index("ix_emulator_journal_project", "project_id", "id"),
)

EMULATOR_TABLES = (emulator_state, emulator_faults, emulator_timing, emulator_held_tasks, emulator_journal)
