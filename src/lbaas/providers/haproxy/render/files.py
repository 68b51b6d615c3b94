"""The bundle's files besides haproxy.cfg: certificates, CA and CRL files, crt-lists, PING script.

Each file is named after the object it serves (secret id, listener id), flat in the LB's
directory, and referenced from the configuration by its absolute path.
"""

from __future__ import annotations

import shlex

from lbaas.domain.model import Certificate, LoadBalancerSnapshot
from lbaas.providers.haproxy.render.escape import RenderError, path


class Files:
    """Collects the files of one bundle while the configuration is written."""

    def __init__(self, snapshot: LoadBalancerSnapshot, lb_dir: str) -> None:
        self._snapshot = snapshot
        self._dir = path(lb_dir.rstrip("/") or "/", "lb_dir")
        self.files: dict[str, bytes] = {}
        self.executables: set[str] = set()

    def _add(self, name: str, content: str) -> str:
        self.files[name] = content.encode()
        return path(f"{self._dir}/{name}", "file path")

    def _certificate(self, secret_id: str, use: str) -> Certificate:
        cert = self._snapshot.certificate(secret_id)
        if cert is None:
            raise RenderError(f"the material of secret {secret_id} ({use}) is missing")
        return cert

    def crt(self, secret_id: str, use: str) -> str:
        """A ``crt`` file: certificate, chain and private key, as stored."""
        cert = self._certificate(secret_id, use)
        if "PRIVATE KEY-----" not in cert.pem:
            raise RenderError(f"secret {secret_id} ({use}) holds no private key")
        return self._add(f"{secret_id}.crt.pem", cert.pem if cert.pem.endswith("\n") else cert.pem + "\n")

    def ca(self, secret_id: str, use: str) -> str:
        """A ``ca-file``: the certificates of the secret only (never its key)."""
        blocks = self._certificate(secret_id, use).blocks("CERTIFICATE")
        if not blocks:
            raise RenderError(f"secret {secret_id} ({use}) holds no certificate")
        return self._add(f"{secret_id}.ca.pem", blocks)

    def crl(self, secret_id: str, use: str) -> str:
        """A ``crl-file``: the ``X509 CRL`` blocks of the secret."""
        blocks = self._certificate(secret_id, use).blocks("X509 CRL")
        if not blocks:
            raise RenderError(f"secret {secret_id} ({use}) holds no certificate revocation list (X509 CRL)")
        return self._add(f"{secret_id}.crl.pem", blocks)

    def crt_list(self, listener_id: str, crt_paths: list[str]) -> str:
        """A crt-list: the default certificate first, then the SNI ones (matched by their names)."""
        return self._add(f"{listener_id}.crt-list", "".join(f"{p}\n" for p in crt_paths))

    def ping_script(self, pool_id: str, ping_path: str, timeout_s: int) -> str:
        """The external-check command of PING monitors: one echo request to the server address.

        HAProxy runs it as ``<cmd> <proxy_addr> <proxy_port> <server_addr> <server_port>``
        (the server address is the member's monitor_address when set), with an empty
        environment; a zero exit status means the check passed.
        """
        ping = shlex.quote(path(ping_path, "ping_path"))
        script = (
            "#!/bin/sh\n"
            "# lbaas PING monitor: reachability of the server address only.\n"
            f'exec {ping} -n -q -c 1 -W {max(1, timeout_s)} "$3" >/dev/null 2>&1\n'
        )
        name = f"{pool_id}.ping-check.sh"
        self.executables.add(name)
        return self._add(name, script)
