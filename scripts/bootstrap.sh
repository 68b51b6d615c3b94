#!/usr/bin/env bash
# Create .venv and install lbaas into it (PEP 668: never into the system Python).
# Usage: scripts/bootstrap.sh [--test] [--sdk]   (--test adds the test dependencies,
# --sdk the gcore SDK that the README's example uses; --test includes it)
set -euo pipefail
cd "$(dirname "$0")/.."
extras=()
for arg in "$@"; do
  case "$arg" in
    --test) extras+=(test) ;;
    --sdk) extras+=(sdk) ;;
    *) echo "bootstrap: unknown argument $arg (use --test and/or --sdk)" >&2; exit 2 ;;
  esac
done
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "bootstrap: python3-venv is missing; installing it with apt-get" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Wait for another apt/dpkg run to finish instead of failing on its lock.
  APT=(apt-get -o DPkg::Lock::Timeout=300)
  $SUDO "${APT[@]}" update -qq && $SUDO "${APT[@]}" install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
spec="."
if [ "${#extras[@]}" -gt 0 ]; then spec=".[$(IFS=,; echo "${extras[*]}")]"; fi
.venv/bin/python -m pip install -q -e "$spec"
