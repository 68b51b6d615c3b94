"""Two lbaas deployments on one host may not hand out the same addresses."""

from __future__ import annotations

import pytest

from lbaas.providers.haproxy.host import AddressPoolsOverlap, register

WIDE = {"vip_pool": "127.1.0.0/16", "fip_pool": "127.2.0.0/16"}
INSIDE = {"vip_pool": "127.1.5.0/24", "fip_pool": "127.9.0.0/16"}
ELSEWHERE = {"vip_pool": "127.3.0.0/16", "fip_pool": "127.4.0.0/16"}


def test_overlapping_pools_of_another_live_deployment_are_refused(tmp_path) -> None:
    root = tmp_path / "run"
    first = register(tmp_path / "one", WIDE, root)
    with pytest.raises(AddressPoolsOverlap) as err:
        register(tmp_path / "two", INSIDE, root)
    assert "LBAAS_VIP_POOL" in err.value.message and str(tmp_path / "one") in err.value.message
    # Other pools: fine. The same deployment again (another of its processes): fine.
    register(tmp_path / "two", ELSEWHERE, root).close()
    register(tmp_path / "one", WIDE, root).close()
    first.close()  # that deployment stops: its registration dies with it
    register(tmp_path / "two", INSIDE, root).close()


def test_serving_tells_whether_a_live_process_holds_the_data_dir(tmp_path) -> None:
    from lbaas.providers.haproxy.host import serving

    root = tmp_path / "run"
    assert not serving(tmp_path / "one", root)
    held = register(tmp_path / "one", WIDE, root)
    assert serving(tmp_path / "one", root)
    assert not serving(tmp_path / "two", root)
    held.close()
    assert not serving(tmp_path / "one", root)  # the file stays; nobody holds it


def test_records_of_deployments_whose_data_dir_is_gone_are_forgotten(tmp_path) -> None:
    import shutil

    root = tmp_path / "run"
    (tmp_path / "gone").mkdir()
    (tmp_path / "stopped").mkdir()
    register(tmp_path / "gone", ELSEWHERE, root).close()
    register(tmp_path / "stopped", INSIDE, root).close()
    live = register(tmp_path / "live", {"vip_pool": "127.5.0.0/16", "fip_pool": "127.6.0.0/16"}, root)
    records = sorted(root.glob("*.instance"))
    assert len(records) == 3
    gone = next(r for r in records if str(tmp_path / "gone") in r.read_text())
    (root / gone.stem).mkdir()  # its (empty) run directory
    shutil.rmtree(tmp_path / "gone")
    register(tmp_path / "next", WIDE, root).close()
    left = {r.read_text() for r in root.glob("*.instance")}
    assert not any(str(tmp_path / "gone") in t for t in left) and not (root / gone.stem).exists()
    assert any(str(tmp_path / "stopped") in t for t in left)  # stopped, but its data dir is there
    assert any(str(tmp_path / "live") in t for t in left)  # running
    live.close()
