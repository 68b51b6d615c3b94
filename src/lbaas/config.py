"""Settings: one frozen object built from flags and ``LBAAS_*`` variables."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from pathlib import Path

import sqlalchemy as sa


def _env_number(name: str, default: float, kind: type = int) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


def _env_int(name: str, default: int) -> int:
    return int(_env_number(name, default, int))


def _env_bool(name: str) -> bool | None:
    raw = (os.environ.get(name) or "").strip().lower()
    if raw in ("", "auto"):
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {raw!r}")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a process of lbaas needs to know about its environment."""

    database_url: str
    data_dir: Path
    #: ``noop``, ``haproxy``, or ``auto``: haproxy when a usable HAProxy (>= 2.6) is installed.
    provider: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8080
    admin_api_key: str | None = None
    region_name: str = "Luxembourg-2"
    project_name: str = "default"
    vip_pool: str = "127.1.0.0/16"
    fip_pool: str = "127.2.0.0/16"
    noop_task_delay_ms: int = 0
    worker_threads: int = 4
    run_worker: bool = True
    lease_seconds: float = 10.0
    poll_interval: float = 1.0
    #: Seconds between two full reads of every HAProxy's stats (counters; health between two
    #: reads comes as events): the poller's full round, see lbaas.tasks.poller.
    stats_interval: float = 5.0
    #: FastAPI's native OpenTelemetry (traces, metrics, logs to the global providers): off unless asked.
    otel: bool = False
    drift_interval: float = 30.0
    #: The most load balancers this host may hold (haproxy); default: from its memory.
    max_load_balancers: int | None = None
    #: Seconds between two metrics samples of each LB (LBAAS_METRICS_INTERVAL_S), 1..3600.
    metrics_interval: int = 60
    max_body_bytes: int = 1 << 20
    secret_key: str | None = None
    #: Short directory for HAProxy's UNIX sockets (None: /run/lbaas or /tmp/lbaas-<uid>).
    run_dir: Path | None = None
    haproxy_bin: str = "haproxy"
    # Emulator controls (reset, faults, timing, journal, snapshot): None = on with the noop provider only.
    emulator_controls: bool | None = None
    emulator_journal_size: int | None = None  # None: as stored (0, off, on a new database)
    emulator_task_timing: str | None = None

    def controls_for(self, provider_name: str) -> bool:
        """Whether the emulator's admin API and hooks are on with this provider (by default only
        with the emulator, ``noop``: a real data plane never exposes a reset unless asked)."""
        return provider_name == "noop" if self.emulator_controls is None else self.emulator_controls

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Build settings from ``LBAAS_*`` variables; explicit overrides win (None = not given)."""
        data_dir = Path(os.environ.get("LBAAS_DATA_DIR") or "./.lbaas")
        values: dict[str, object] = {
            "data_dir": data_dir,
            "database_url": os.environ.get("LBAAS_DATABASE_URL") or default_database_url(data_dir),
            "provider": os.environ.get("LBAAS_PROVIDER") or "auto",
            "host": os.environ.get("LBAAS_HOST") or "127.0.0.1",
            "port": _env_int("LBAAS_PORT", 8080),
            "admin_api_key": os.environ.get("LBAAS_ADMIN_API_KEY") or None,
            "region_name": os.environ.get("LBAAS_REGION_NAME") or "Luxembourg-2",
            "project_name": os.environ.get("LBAAS_PROJECT_NAME") or "default",
            "vip_pool": os.environ.get("LBAAS_VIP_POOL") or "127.1.0.0/16",
            "fip_pool": os.environ.get("LBAAS_FIP_POOL") or "127.2.0.0/16",
            "noop_task_delay_ms": _env_int("LBAAS_NOOP_TASK_DELAY_MS", 0),
            "worker_threads": _env_int("LBAAS_WORKER_THREADS", 4),
            "lease_seconds": _env_number("LBAAS_LEASE_SECONDS", 10.0, float),
            "poll_interval": _env_number("LBAAS_POLL_INTERVAL_S", 1.0, float),
            "stats_interval": _env_number("LBAAS_STATS_INTERVAL_S", 5.0, float),
            "otel": (os.environ.get("LBAAS_OTEL") or "").lower() in ("1", "true", "yes"),
            "drift_interval": _env_number("LBAAS_DRIFT_INTERVAL_S", 30.0, float),
            "max_load_balancers": _env_number("LBAAS_MAX_LOAD_BALANCERS", None, int),
            "metrics_interval": _env_int("LBAAS_METRICS_INTERVAL_S", 60),
            "secret_key": os.environ.get("LBAAS_SECRET_KEY") or None,
            "run_dir": Path(os.environ["LBAAS_RUN_DIR"]) if os.environ.get("LBAAS_RUN_DIR") else None,
            "haproxy_bin": os.environ.get("LBAAS_HAPROXY_BIN") or "haproxy",
            "emulator_controls": _env_bool("LBAAS_EMULATOR_CONTROLS"),
            "emulator_journal_size": _env_int("LBAAS_EMULATOR_JOURNAL_SIZE", -1),
            "emulator_task_timing": os.environ.get("LBAAS_EMULATOR_TASK_TIMING") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values["emulator_journal_size"] == -1:
            values["emulator_journal_size"] = None
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse settings that would make the service unsafe or unusable."""
        for name in ("vip_pool", "fip_pool"):
            net = ipaddress.ip_network(getattr(self, name), strict=False)
            if not net.is_loopback:
                raise ValueError(f"{name} {net} must lie in 127.0.0.0/8: lbaas binds VIPs on loopback")
        if self.provider not in ("noop", "haproxy", "auto"):
            raise ValueError(f"unknown provider {self.provider!r}: use noop, haproxy or auto")
        check_database_url(self.database_url)
        if not 1 <= self.metrics_interval <= 3600:
            raise ValueError(
                f"metrics interval {self.metrics_interval} s is not 1..3600 (LBAAS_METRICS_INTERVAL_S)"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not 0..65535 (LBAAS_PORT)")
        if self.emulator_journal_size is not None and not 0 <= self.emulator_journal_size <= 100_000:
            raise ValueError("LBAAS_EMULATOR_JOURNAL_SIZE must be between 0 and 100000")


def check_database_url(url: str) -> None:
    """A URL lbaas can use: SQLite or PostgreSQL (ValueError saying which setting to fix)."""
    hint = "use sqlite:///PATH or postgresql://USER@HOST:PORT/DB (--database-url or LBAAS_DATABASE_URL)"
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ValueError(f"cannot parse the database URL {url!r}; {hint}") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        shown = parsed.render_as_string(hide_password=True)
        raise ValueError(f"unsupported database {parsed.get_backend_name()!r} in {shown!r}; {hint}")


def default_database_url(data_dir: Path) -> str:
    """SQLite in the data directory."""
    return f"sqlite:///{(data_dir / 'lbaas.db').resolve()}"
