"""py-spy (``--gil``: who holds the GIL) on the lbaas server during the seed PATCH at 16 connections.

    .venv/bin/python bench/profile_patch_tail.py after                   # this tree
    PYTHONPATH=/tmp/old/src .venv/bin/python bench/profile_patch_tail.py before   # another tree's lbaas

Writes py-spy's raw (collapsed) stacks to /tmp/tail-<tag>.txt (one line per stack: thread;frames
count; ``flamegraph.pl`` draws them) and prints wrk's figure measured meanwhile. Needs ``py-spy``
in the venv (``.venv/bin/pip install py-spy``).
"""

import os
import shutil
import subprocess
import sys
import time

import bench_patch
import common
import lbaas_server


def main() -> None:
    tag = sys.argv[1] if len(sys.argv) > 1 else "now"
    spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if spy is None:
        common.fail("py-spy not found: .venv/bin/pip install py-spy")
    with lbaas_server.running(common.API_KEY) as t:
        pid = subprocess.check_output(["pgrep", "-n", "-f", "bin/lbaas serve"]).decode().strip()
        req = bench_patch.request(t)
        lua = common.lua_script(req.method, t.headers, req.body, req.lua)
        common.run_wrk(t.base + req.path, 16, 2, lua)  # warm-up
        out = f"/tmp/tail-{tag}.txt"
        argv = [spy, "record", "-p", pid, "-r", "200", "--gil", "-f", "raw", "-t", "-o", out, "-d", "6"]
        recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        figure = common.run_wrk(t.base + req.path, 16, 5, lua)
        recorder.wait()
    print(f"seed PATCH c16 [{tag}]: {figure} (stacks in {out})")


if __name__ == "__main__":
    main()
