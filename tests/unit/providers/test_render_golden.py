"""Golden configurations: one per feature group, compared byte for byte and checked by HAProxy.

``LBAAS_UPDATE_GOLDEN=1 pytest tests/unit/providers`` rewrites the golden files; review the
diff before committing it. Each golden config is also written out (with real certificate
files) and checked with ``haproxy -c``, warning-free unless the case expects a warning.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from haproxy_helpers import Pki, check, make_pki, warnings_of, workdir
from samples import CASES, EXPECTED_WARNINGS

from lbaas.providers.haproxy.render import Env, render

GOLDEN = Path(__file__).parent / "golden"
# Fixed host facts for the golden files (nothing is written there).
GOLDEN_ENV = Env(
    run_dir="/run/lbaas",
    lb_dir="/var/lib/lbaas/lbs/lb-1",
    fd_limit=20_000,
    host_cpus=2,
    log_socket="/run/lbaas/log.sock",
)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, pki: Pki) -> None:
    bundle = render(CASES[case](pki), GOLDEN_ENV)
    golden = GOLDEN / f"{case}.cfg"
    if os.environ.get("LBAAS_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(bundle.config)
    assert golden.exists(), f"no golden file {golden.name}: run with LBAAS_UPDATE_GOLDEN=1"
    assert bundle.config == golden.read_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_passes_haproxy_check(case: str, pki: Pki) -> None:
    with workdir() as wd:
        bundle = render(CASES[case](pki), wd.env(host_cpus=2, log_socket=str(wd.root / "log.sock")))
        result = check(wd.write(bundle))
        assert result.returncode == 0, result.stdout + result.stderr
        unexpected = [
            w for w in warnings_of(result) if not any(e in w for e in EXPECTED_WARNINGS.get(case, ()))
        ]
        assert not unexpected, "\n".join(unexpected)


def test_render_is_deterministic(pki: Pki) -> None:
    for make in CASES.values():
        snapshot = make(pki)
        first, second = render(snapshot, GOLDEN_ENV), render(snapshot, GOLDEN_ENV)
        assert first.files == second.files
        assert first.config_hash == second.config_hash
