"""The shell scripts, run with fake apt-get, python3 and lbaas on PATH (nothing is installed).

.ci/run once failed with "Could not get lock /var/lib/dpkg/lock-frontend" because another apt
process ran on the machine: every apt-get call must wait for the lock instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCK_WAIT = "DPkg::Lock::Timeout=300"


def fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/usr/bin/env bash\n" + body + "\n")
    path.chmod(0o755)


def sandbox(tmp_path: Path, *scripts: str) -> tuple[Path, Path, dict[str, str]]:
    """A copy of the given repository files, a bin dir of fakes first on PATH, and a call log."""
    root, bin_dir, log = tmp_path / "repo", tmp_path / "bin", tmp_path / "calls.log"
    (root / "scripts").mkdir(parents=True)
    for script in scripts:
        (root / script).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / script, root / script)
    bin_dir.mkdir()
    log.touch()
    fake(bin_dir, "apt-get", f'echo "apt-get $*" >> {log}')
    fake(bin_dir, "sudo", '"$@"')
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return root, log, env


def apt_calls(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("apt-get")]


def test_ci_run_waits_for_the_apt_lock(tmp_path: Path) -> None:
    """A fresh machine without PostgreSQL: .ci/run installs tools and PostgreSQL, waiting on the lock."""
    root, log, env = sandbox(tmp_path, ".ci/run")
    bin_dir = tmp_path / "bin"
    # Only basic tools on PATH besides the fakes, so no real pg_ctlcluster is found.
    for tool in ("bash", "dirname", "ls", "head", "seq", "sleep", "env", "touch"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    env["PATH"] = str(bin_dir)
    up = tmp_path / "pg-up"
    # Installing the postgresql package brings pg_ctlcluster, which starts the cluster.
    ctl = tmp_path / "pg_ctlcluster"
    fake(tmp_path, "pg_ctlcluster", f"touch {up}")
    install = f'[[ " $* " == *" postgresql "* ]] && {shutil.which("cp")} -p {ctl} {bin_dir}/pg_ctlcluster'
    fake(bin_dir, "apt-get", f'echo "apt-get $*" >> {log}\n{install}\nexit 0')
    fake(bin_dir, "pg_isready", f"[ -e {up} ]")
    fake(root / "scripts", "test.sh", f'echo "test.sh CI=$CI" >> {log}')
    out = subprocess.run(["bash", str(root / ".ci/run")], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    calls = apt_calls(log)
    assert len(calls) == 3, (calls, out.stderr)  # update, the tools, postgresql
    assert all(LOCK_WAIT in call for call in calls), calls
    assert "install -y -qq postgresql" in calls[-1], calls
    assert log.read_text().splitlines()[-1] == "test.sh CI=true"


def test_bootstrap_waits_for_the_apt_lock(tmp_path: Path) -> None:
    root, log, env = sandbox(tmp_path, "scripts/bootstrap.sh")
    # python3 without venv/ensurepip: bootstrap installs python3-venv with apt-get.
    fake(tmp_path / "bin", "python3", '[ "$1" = "-c" ] && exit 1; exit 0')
    (root / ".venv/bin").mkdir(parents=True)
    fake(root / ".venv/bin", "python", f'echo "venv-python $*" >> {log}')
    out = subprocess.run(
        ["bash", str(root / "scripts/bootstrap.sh"), "--sdk"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    calls = apt_calls(log)
    assert [c.split()[-1] for c in calls if "install" in c] == ["python3-venv"], calls
    assert calls and all(LOCK_WAIT in call for call in calls), calls
    assert "venv-python -m pip install -q -e .[sdk]" in log.read_text()


def _serve_sandbox(
    tmp_path: Path, *, haproxy_usable: bool, installed: bool
) -> tuple[Path, Path, dict[str, str]]:
    """serve.sh with fakes: bootstrap, lbaas, the venv's python (the HAProxy version check), and,
    unless ``installed``, no haproxy or ping on PATH (only basic tools besides the fakes)."""
    root, log, env = sandbox(tmp_path, "scripts/serve.sh")
    bin_dir = tmp_path / "bin"
    fake(root / "scripts", "bootstrap.sh", f'echo "bootstrap $*" >> {log}')
    (root / ".venv/bin").mkdir(parents=True)
    fake(
        root / ".venv/bin",
        "lbaas",
        f'echo "lbaas $* key=${{LBAAS_ADMIN_API_KEY:-unset}} provider=$LBAAS_PROVIDER" >> {log}',
    )
    fake(root / ".venv/bin", "python", "exit 0" if haproxy_usable else "exit 1")
    for tool in ("bash", "dirname", "id", "env"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    if installed:
        fake(bin_dir, "haproxy", "exit 0")
        fake(bin_dir, "ping", "exit 0")
    env["PATH"] = str(bin_dir)
    env.pop("LBAAS_ADMIN_API_KEY", None)
    env.pop("LBAAS_PROVIDER", None)
    return root, log, env


def _run_serve(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(root / "scripts/serve.sh"), "--port", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_sh_installs_the_sdk_and_leaves_the_key_to_lbaas(tmp_path: Path) -> None:
    """The README's SDK example runs in the .venv that scripts/serve.sh made; HAProxy there: no apt."""
    root, log, env = _serve_sandbox(tmp_path, haproxy_usable=True, installed=True)
    out = _run_serve(root, env)
    assert out.returncode == 0, out.stderr
    assert log.read_text().splitlines() == [
        "bootstrap --sdk",
        "lbaas serve --port 9 key=unset provider=haproxy",
    ]
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'sdk = ["gcore==0.59.0"]' in pyproject


def test_serve_sh_installs_haproxy_and_ping_when_missing(tmp_path: Path) -> None:
    root, log, env = _serve_sandbox(tmp_path, haproxy_usable=True, installed=False)
    out = _run_serve(root, env)
    assert out.returncode == 0, out.stderr
    calls = apt_calls(log)
    assert any("install -y -qq haproxy iputils-ping" in c for c in calls), calls
    assert all(LOCK_WAIT in c for c in calls), calls
    assert log.read_text().splitlines()[-1].endswith("provider=haproxy")


def test_serve_sh_falls_back_to_the_emulator_and_says_so_in_one_line(tmp_path: Path) -> None:
    root, log, env = _serve_sandbox(tmp_path, haproxy_usable=False, installed=False)
    out = _run_serve(root, env)
    assert out.returncode == 0, out.stderr
    said = [line for line in out.stderr.splitlines() if "noop" in line]
    assert len(said) == 1 and "HAProxy" in said[0] and "emulator" in said[0], out.stderr
    assert log.read_text().splitlines()[-1].endswith("provider=noop")
