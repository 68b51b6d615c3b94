"""The flow log: one JSON object per connection (TCP) or request (HTTP).

Fields: ``ts`` (accept time, epoch seconds with milliseconds), ``time`` (HAProxy's
date), ``lb``, ``listener`` (frontend = listener id), ``client_ip``, ``client_port``,
``pool`` (backend = pool id; the listener id when no pool was chosen), ``member``
(server = member id, ``<NOSRV>`` when none), ``status``, ``bytes_in`` (from the client),
``bytes_out`` (to the client), ``t_queue``, ``t_connect``, ``t_response``, ``t_total`` (ms,
-1 when the phase was not reached) and ``termination`` (HAProxy's termination state).
HTTP-only fields (``status``, ``t_response``) are ``null`` for TCP listeners. Every value
is either a number or a string made of characters JSON needs no escape for (ids, IP
addresses, termination codes), so the line parses as JSON.
"""

from __future__ import annotations

from lbaas.providers.haproxy.render.escape import logformat_literal, word

_COMMON = (
    '"ts":%Ts.%ms,"lb":"{lb}","listener":"%f","client_ip":"%ci","client_port":%cp,'
    '"pool":"%b","member":"%s","bytes_in":%U,"bytes_out":%B,"t_queue":%Tw,"t_connect":%Tc,'
)
HTTP_FORMAT = (
    '{{"time":"%tr",' + _COMMON + '"status":%ST,"t_response":%Tr,"t_total":%Ta,"termination":"%tsc"}}'
)
TCP_FORMAT = (
    '{{"time":"%t",' + _COMMON + '"status":null,"t_response":null,"t_total":%Tt,"termination":"%ts"}}'
)


def log_format(lb_id: str, http: bool) -> str:
    """The ``log-format`` line of a frontend."""
    fmt = (HTTP_FORMAT if http else TCP_FORMAT).format(lb=logformat_literal(lb_id, "load balancer id"))
    return f"    log-format {word(fmt)}"
