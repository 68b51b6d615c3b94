"""One object of every kind, built through the SDK in a fresh project: the fuzz and conformance tests use it.

An LB with an HTTP listener, a pool with two members and an HTTP health
monitor, an L7 policy with a rule, a floating IP on the LB's VIP port, a TLS
secret, and the finished tasks that made them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import make_client


def tls_payload() -> dict[str, str]:
    """A self-signed EC certificate and its key, PEM (fast to make, accepted by lbaas)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graph.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "certificate_chain": "",
        "private_key": pem_key.decode(),
    }


@dataclass
class Graph:
    project_id: int
    token: str
    client: Any
    ids: dict[str, str] = field(default_factory=dict)

    def path_ids(self) -> dict[str, Any]:
        """Path parameter name -> value, as the OpenAPI paths name them."""
        return {"project_id": self.project_id, "region_id": 1, **self.ids}


def build_graph(server) -> Graph:
    pid, token = server.new_project()
    c = make_client(server, token, pid)
    lbs = c.cloud.load_balancers
    lb = lbs.create_and_poll(
        name="graph-lb",
        tags={"team": "graph"},
        listeners=[
            {
                "name": "graph-http",
                "protocol": "HTTP",
                "protocol_port": 80,
                "pools": [
                    {
                        "name": "graph-pool",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [
                            {"address": "127.0.4.1", "protocol_port": 8080},
                            {"address": "127.0.4.2", "protocol_port": 8080, "weight": 5},
                        ],
                        "healthmonitor": {
                            "type": "HTTP",
                            "delay": 5,
                            "max_retries": 3,
                            "timeout": 3,
                            "url_path": "/health",
                        },
                    }
                ],
            }
        ],
    )
    listener = lb.listeners[0]
    pool = lbs.pools.list(load_balancer_id=lb.id, details=True).results[0]
    policy = lbs.l7_policies.create_and_poll(
        listener_id=listener.id, action="REDIRECT_TO_URL", redirect_url="https://example.com/"
    )
    rule = lbs.l7_policies.rules.create_and_poll(
        l7policy_id=policy.id, type="PATH", compare_type="STARTS_WITH", value="/old"
    )
    fip = c.cloud.floating_ips.create_and_poll(port_id=lb.vip_port_id, tags={"team": "graph"})
    secret = c.cloud.secrets.upload_tls_certificate_and_poll(name="graph-cert", payload=tls_payload())
    ids = {
        "load_balancer_id": lb.id,
        "listener_id": listener.id,
        "pool_id": pool.id,
        "member_id": pool.members[0].id,
        "l7policy_id": policy.id,
        "l7rule_id": rule.id,
        "floating_ip_id": fip.id,
        "secret_id": secret.id,
        "task_id": lb.creator_task_id,
    }
    return Graph(pid, token, c, ids)
