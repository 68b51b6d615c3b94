"""L7 policies and rules: ACLs, then deny / redirect / use_backend lines.

Each rule becomes ``acl <rule_id> <fetch> <flags> -- <value>``; a policy's rules are
ANDed on one condition line (``!`` before an inverted rule). Policies without rules are
skipped, and so is a REDIRECT_TO_POOL policy whose pool is not rendered (disabled or
gone), as in Octavia.

Order. Octavia's HAProxy driver (which Gcore's LBs inherit) documents: REJECT policies
take precedence over all others, then REDIRECT_TO_URL / REDIRECT_PREFIX, then
REDIRECT_TO_POOL, each group in position order; that is also the order in which HAProxy
evaluates ``http-request deny``, ``redirect`` and ``use_backend``, so the lines are
written in that order and HAProxy warns about nothing.

Fetches: HOST_NAME ``req.hdr(host)`` case-insensitive; PATH ``path``; FILE_TYPE
``path_end`` (EQUAL_TO: the path ends with the value, Octavia's rule) or ``path -m reg``
(REGEX, over the whole path); HEADER ``req.fhdr(<key>)`` (the full value: ``req.hdr``
would split it at commas); COOKIE ``req.cook(<key>)``; SSL_CONN_HAS_CERT ``ssl_c_used``;
SSL_VERIFY_RESULT ``ssl_c_verify`` (integer); SSL_DN_FIELD ``ssl_c_s_dn(<key>)``. Gcore
has no client-CA field, so a listener never asks for a client certificate: the SSL_*
rules see a connection without one (``ssl_c_used`` false, ``ssl_c_verify`` 0, empty DN
fields) and match accordingly.
"""

from __future__ import annotations

from collections.abc import Mapping

from lbaas.domain.enums import L7Action, L7CompareType, L7RuleType
from lbaas.domain.model import L7Policy, L7Rule, Listener, LoadBalancerSnapshot
from lbaas.providers.haproxy.render.escape import RenderError, fetch, word

_MATCH = {
    L7CompareType.EQUAL_TO: "str",
    L7CompareType.STARTS_WITH: "beg",
    L7CompareType.ENDS_WITH: "end",
    L7CompareType.CONTAINS: "sub",
    L7CompareType.REGEX: "reg",
}
DEFAULT_REDIRECT_CODE = 302


def acl_line(rule: L7Rule) -> str:
    """The ``acl`` line of one rule, named by the rule's id."""
    value = word(rule.value, "L7 rule value")
    match = f"-m {_MATCH[rule.compare_type]}"
    kind = rule.type
    if kind is L7RuleType.HOST_NAME:
        expr = f"req.hdr(host) -i {match}"
    elif kind is L7RuleType.PATH:
        expr = f"path {match}"
    elif kind is L7RuleType.FILE_TYPE:
        expr = "path -m reg" if rule.compare_type is L7CompareType.REGEX else "path_end"
    elif kind is L7RuleType.HEADER:
        expr = f"{fetch('req.fhdr', _key(rule), 'L7 rule key')} {match}"
    elif kind is L7RuleType.COOKIE:
        expr = f"{fetch('req.cook', _key(rule), 'L7 rule key')} {match}"
    elif kind is L7RuleType.SSL_DN_FIELD:
        expr = f"{fetch('ssl_c_s_dn', _key(rule), 'L7 rule key')} {match}"
    elif kind is L7RuleType.SSL_CONN_HAS_CERT:
        return f"    acl {rule.id} ssl_c_used"
    elif kind is L7RuleType.SSL_VERIFY_RESULT:
        if not rule.value.isascii() or not rule.value.isdigit():
            raise RenderError(f"L7 rule {rule.id}: SSL_VERIFY_RESULT takes an integer, not {rule.value!r}")
        return f"    acl {rule.id} ssl_c_verify -- {int(rule.value)}"
    else:  # pragma: no cover - the enum is exhausted above
        raise RenderError(f"L7 rule {rule.id}: unknown type {kind}")
    return f"    acl {rule.id} {expr} -- {value}"


def _key(rule: L7Rule) -> str:
    if not rule.key:
        raise RenderError(f"L7 rule {rule.id}: a {rule.type} rule needs a key")
    return rule.key


def _condition(policy: L7Policy) -> str:
    return " ".join(("!" if r.invert else "") + r.id for r in policy.rules)


def policy_lines(
    snapshot: LoadBalancerSnapshot, listener: Listener, rendered_pools: Mapping[str, str]
) -> list[str]:
    """The ACL and action lines of a listener's L7 policies (see the module docstring).

    ``rendered_pools`` maps the id of every pool that has a backend to its mode.
    """
    acls: list[str] = []
    actions: dict[str, list[str]] = {"deny": [], "redirect": [], "backend": []}
    for policy in listener.l7policies:
        line = _action(snapshot, policy, rendered_pools)
        if line is None or not policy.rules:
            continue
        group, text = line
        acls += [acl_line(rule) for rule in policy.rules]
        actions[group].append(f"    {text} if {_condition(policy)}")
    return acls + actions["deny"] + actions["redirect"] + actions["backend"]


def _action(
    snapshot: LoadBalancerSnapshot, policy: L7Policy, rendered_pools: Mapping[str, str]
) -> tuple[str, str] | None:
    code = policy.redirect_http_code or DEFAULT_REDIRECT_CODE
    if policy.action is L7Action.REJECT:
        return "deny", "http-request deny"
    if policy.action is L7Action.REDIRECT_TO_URL:
        return "redirect", f"redirect location {word(_required(policy.redirect_url, policy))} code {code}"
    if policy.action is L7Action.REDIRECT_PREFIX:
        return "redirect", f"redirect prefix {word(_required(policy.redirect_prefix, policy))} code {code}"
    pool = snapshot.pool(policy.redirect_pool_id)
    if pool is None or pool.id not in rendered_pools:
        return None
    if rendered_pools[pool.id] != "http":
        raise RenderError(
            f"L7 policy {policy.id}: pool {pool.id} ({pool.protocol}) cannot serve HTTP requests"
        )
    return "backend", f"use_backend {pool.id}"


def _required(value: str | None, policy: L7Policy) -> str:
    if not value:
        raise RenderError(f"L7 policy {policy.id}: {policy.action} needs its redirect target")
    return value
