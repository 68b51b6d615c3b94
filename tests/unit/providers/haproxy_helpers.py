"""Running real HAProxy on loopback for the renderer's tests: check, start, stop.

Every started process is stopped by the context manager that started it (by its pid).
Addresses are random in 127.0.0.0/8 and ports are free ones, so concurrent runs of these
tests (several engineers share the machine) never collide.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lbaas.providers.haproxy.render import SERVER_STATE_FILE, Bundle, Env

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)


def need_haproxy() -> str:
    """The haproxy binary; skip loudly when missing, fail in CI."""
    if HAPROXY is None:
        if os.environ.get("CI") == "true":
            pytest.fail("haproxy is required in CI (apt-get install haproxy)")
        pytest.skip("!!! haproxy binary not found: HAProxy tests SKIPPED")
    return HAPROXY


def random_loopback() -> str:
    """A random address of 127.0.0.0/8 (avoiding 127.0.0.x, which other tests like)."""
    return f"127.{random.randint(64, 250)}.{random.randint(0, 255)}.{random.randint(2, 254)}"


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


@dataclass
class Workdir:
    """Short directories for one LB: run_dir (sockets) and lb_dir (files)."""

    root: Path

    @property
    def env_kwargs(self) -> dict[str, str]:
        return {"run_dir": str(self.root / "run"), "lb_dir": str(self.root / "lb")}

    def env(self, **kw: object) -> Env:
        return Env(**{**self.env_kwargs, **kw})  # type: ignore[arg-type]

    def write(self, bundle: Bundle) -> Path:
        run, lb = self.root / "run", self.root / "lb"
        run.mkdir(exist_ok=True)
        lb.mkdir(exist_ok=True)
        for name, content in bundle.files.items():
            target = lb / name
            target.write_bytes(content)
            target.chmod(0o700 if name in bundle.executables else 0o600)
        state = lb / SERVER_STATE_FILE
        if not state.exists():
            state.write_text("1\n")  # an empty state file (version line only)
        return lb / "haproxy.cfg"


@contextlib.contextmanager
def workdir() -> Iterator[Workdir]:
    root = Path(tempfile.mkdtemp(prefix="lbr", dir="/tmp"))  # short: socket paths <= 97 chars
    try:
        yield Workdir(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def check(cfg: Path) -> subprocess.CompletedProcess[str]:
    """``haproxy -c`` on a written bundle."""
    return subprocess.run(
        [need_haproxy(), "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30, check=False
    )


def warnings_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if "[WARNING]" in line]


def _limit_fds(limit: int | None):
    if limit is None:
        return None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


@contextlib.contextmanager
def started(
    cfg: Path, *, fd_limit: int | None = None, wait_for: tuple[str, int] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """Run HAProxy (master-worker, foreground) on ``cfg``; stop it on exit.

    ``wait_for``: an (address, port) that must accept connections before the block runs.
    Raises RuntimeError with HAProxy's output if it exits while starting.
    """
    proc = subprocess.Popen(
        [need_haproxy(), "-W", "-f", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_limit_fds(fd_limit),  # noqa: PLW1509 - only setrlimit, before exec
    )
    try:
        deadline = time.monotonic() + 10
        while wait_for is not None:
            if proc.poll() is not None:
                raise RuntimeError(f"haproxy exited ({proc.returncode}): {proc.stdout.read()}")  # type: ignore[union-attr]
            with contextlib.suppress(OSError), socket.create_connection(wait_for, timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not listen on {wait_for}")
            time.sleep(0.02)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # hard stop: tests keep no connection worth draining
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout:
            proc.stdout.close()


def run_until_exit(cfg: Path, *, fd_limit: int, seconds: float = 3) -> tuple[int | None, str]:
    """Start HAProxy and report (exit code or None if still running after ``seconds``, output)."""
    with started(cfg, fd_limit=fd_limit) as proc:
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return None, ""
        return proc.returncode, proc.stdout.read() if proc.stdout else ""


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Pki:
    ca_pem: str
    crl_pem: str
    default_pem: str  # leaf for default.example: cert + CA chain + key
    sni_pem: str  # leaf for sni.example
    client_pem: str


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_pki() -> Pki:
    """A throwaway CA, two server leaves (default.example, sni.example), a client leaf, a CRL."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("lbaas test CA"))
        .issuer_name(_name("lbaas test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return _cert_pem(cert) + _cert_pem(ca) + _key_pem(key)

    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now - dt.timedelta(days=1))
        .next_update(now + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    return Pki(
        ca_pem=_cert_pem(ca) + _key_pem(ca_key),  # as a stored secret would be: with a key
        crl_pem=_cert_pem(ca) + crl.public_bytes(serialization.Encoding.PEM).decode() + _key_pem(ca_key),
        default_pem=leaf("default.example"),
        sni_pem=leaf("sni.example"),
        client_pem=leaf("client.example"),
    )
