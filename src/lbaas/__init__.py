"""lbaas: a self-hostable load balancer service, wire-compatible with Gcore Cloud."""

__version__ = "0.1.0"
