"""How many LBs a host holds (limits.max_load_balancers): memory or pids, whichever binds first."""

from __future__ import annotations

from lbaas.providers.haproxy import limits


def test_memory_binds_on_a_small_host() -> None:
    # 24 GiB, 2 cores, pid_max 32768: the host bench_density ran on
    assert limits.max_load_balancers(24105, tasks=32768, cpus=2) == (24105 - 2048) // 16 == 1378


def test_pids_bind_on_a_large_host() -> None:
    by_memory = limits.max_load_balancers(128 * 1024)
    by_pids = limits.max_load_balancers(128 * 1024, tasks=32768, cpus=2)
    assert by_memory == 8064
    assert by_pids == (32768 - 4096) // 5 == 5734


def test_more_threads_per_lb_leave_room_for_fewer() -> None:
    assert limits.tasks_per_lb(1) == 3  # master, worker, a reload's old worker
    assert limits.max_load_balancers(1 << 20, tasks=32768, cpus=8) < limits.max_load_balancers(
        1 << 20, tasks=32768, cpus=2
    )


def test_never_below_one() -> None:
    assert limits.max_load_balancers(1024, tasks=100, cpus=2) == 1


def test_the_task_limit_of_this_host_is_read() -> None:
    found = limits.task_limit()
    assert found is None or found >= 1
