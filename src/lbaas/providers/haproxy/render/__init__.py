"""The HAProxy 2.6 configuration of one load balancer, as a pure function of its snapshot.

``render(snapshot, env) -> Bundle``: no I/O, same input → same bytes. The mapping from
API fields to HAProxy, and every decision taken on the way, is in docs/haproxy-mapping.md.
Modules: :mod:`.escape` (quoting user strings), :mod:`.globaldefs` (global and defaults,
maxconn, threads), :mod:`.frontends` (listeners), :mod:`.l7` (policies and rules),
:mod:`.backends` (pools, members, monitors), :mod:`.files` (certificates, crt-lists, the
PING script), :mod:`.logformat` (the flow log).

Raises :class:`RenderError` when the snapshot holds something HAProxy cannot serve as
meant (a UDP listener or pool, a K8S or UDP-CONNECT monitor, a missing certificate, a
control character in a user string...): the API refuses these before they are stored, so
an error here means a bug or a stale row, and no configuration is better than a wrong one.
"""

from __future__ import annotations

import re

from lbaas.domain.enums import HealthMonitorType
from lbaas.domain.model import LoadBalancerSnapshot
from lbaas.providers.haproxy.render import backends, frontends, globaldefs
from lbaas.providers.haproxy.render.bundle import CONFIG_FILE, SERVER_STATE_FILE, Bundle, Env
from lbaas.providers.haproxy.render.escape import RenderError
from lbaas.providers.haproxy.render.files import Files

__all__ = ["CONFIG_FILE", "SERVER_STATE_FILE", "Bundle", "Env", "RenderError", "render"]

_ID = re.compile(r"[A-Za-z0-9._:-]+")  # section, ACL and server names: our UUIDs


def render(snapshot: LoadBalancerSnapshot, env: Env) -> Bundle:
    """Every file HAProxy needs to serve ``snapshot`` (see the module docstring)."""
    _check_ids(snapshot)
    serving = snapshot.admin_state_up  # a disabled LB: no frontends, no backends
    listeners = [li for li in snapshot.listeners if serving and li.admin_state_up]
    pools = [p for p in snapshot.pools if serving and p.admin_state_up]
    for listener in snapshot.listeners:
        frontends.frontend_mode(listener)  # refuses UDP even when disabled
    modes = {p.id: backends.backend_mode(p) for p in snapshot.pools}
    rendered = {p.id: modes[p.id] for p in pools}
    monitors = [backends.monitor(p) for p in pools]
    ping = any(hm is not None and hm.type is HealthMonitorType.PING for hm in monitors)
    logging = bool(snapshot.logging and snapshot.logging.enabled and env.log_socket)

    threads = globaldefs.nbthread(snapshot, env)
    binds = len(listeners) * (1 + len(snapshot.floating_ip_addresses))
    servers = sum(len(p.members) for p in pools)
    maxconn = globaldefs.max_connections(env, threads, binds, servers)

    files = Files(snapshot, env.lb_dir)
    sections = [
        [f"# lbaas load balancer {snapshot.id}: generated, do not edit"],
        globaldefs.global_section(
            snapshot, env, maxconn=maxconn, threads=threads, logging=logging, ping=ping
        ),
        globaldefs.defaults_section(logging),
    ]
    sections += [frontends.userlist_section(li) for li in listeners if li.user_list]
    for listener in listeners:
        sections.append(
            frontends.frontend_section(
                snapshot, listener, files, maxconn=maxconn, backends=rendered, logging=logging
            )
        )
    sections += [backends.backend_section(snapshot, pool, files, env, logging=logging) for pool in pools]
    if logging:
        sections.append(globaldefs.ring_section(env))
    config = "\n\n".join("\n".join(lines) for lines in sections) + "\n"
    return Bundle(
        files={CONFIG_FILE: config.encode(), **files.files}, executables=frozenset(files.executables)
    )


def _check_ids(snapshot: LoadBalancerSnapshot) -> None:
    ids = [snapshot.id]
    for listener in snapshot.listeners:
        ids.append(listener.id)
        for policy in listener.l7policies:
            ids += [rule.id for rule in policy.rules]
    for pool in snapshot.pools:
        ids.append(pool.id)
        ids += [member.id for member in pool.members]
    for object_id in ids:
        if not _ID.fullmatch(object_id):
            raise RenderError(f"id {object_id!r} is not usable as an HAProxy name")
