"""The load-balancer flavors this deployment sells, in Gcore's terms.

``flavor_id == flavor_name`` (as at Gcore). An LB whose ``flavor`` is null runs the
default flavor, :data:`DEFAULT_FLAVOR` (Gcore's smallest, 1 vCPU / 2 GiB).
"""

from __future__ import annotations

from types import MappingProxyType

# name: (vcpus, ram MiB)
FLAVORS = MappingProxyType(
    {
        "lb1-1-2": (1, 2048),
        "lb1-2-4": (2, 4096),
        "lb1-4-8": (4, 8192),
        "lb1-8-16": (8, 16384),
    }
)
DEFAULT_FLAVOR = "lb1-1-2"
