"""Snapshots for the renderer's golden tests: one per feature group.

Ids are short readable names (the renderer only needs ``[A-Za-z0-9._:-]``); addresses are
fixed for the golden files and replaced with random loopback ones where HAProxy is started.
"""

from __future__ import annotations

from collections.abc import Callable

from haproxy_helpers import Pki

from lbaas.domain.enums import (
    HealthMonitorType as HM,
)
from lbaas.domain.enums import (
    HttpMethod,
    L7Action,
    L7CompareType,
    L7RuleType,
    LbAlgorithm,
    ListenerProtocol,
    PoolProtocol,
    SessionPersistenceType,
)
from lbaas.domain.model import (
    Certificate,
    Flavor,
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancerSnapshot,
    Logging,
    Member,
    Pool,
    SessionPersistence,
    UserListEntry,
)

LP, PP = ListenerProtocol, PoolProtocol
VIP = "127.10.0.1"
FIP = "127.10.0.2"
# "secret" under SHA-512 crypt (openssl passwd -6 -salt lbaastest secret)
SECRET_HASH = (
    "$6$lbaastest$FZ4gFvFf9lFxx7FVJTF6tHQjmoTS0vnoNx1GG.JFpXA.VItnJnmm7jhrdNsJKwP8g8zuTYmYJETlL36aaP5cB."
)


def lb(*, listeners=(), pools=(), **kw) -> LoadBalancerSnapshot:
    base = {"id": "lb-1", "name": "golden lb", "vip_address": VIP}
    return LoadBalancerSnapshot(**{**base, **kw}, listeners=tuple(listeners), pools=tuple(pools))


def members(*specs: tuple[str, str, int]) -> tuple[Member, ...]:
    return tuple(Member(id=i, address=a, protocol_port=p) for i, a, p in specs)


def http_basic(_: Pki) -> LoadBalancerSnapshot:
    """HTTP listener on VIP + floating IP, headers, CIDRs, timeouts, an HTTP monitor, member flags."""
    hm = HealthMonitor(
        id="hm-web",
        type=HM.HTTP,
        delay=5,
        timeout=3,
        max_retries=2,
        max_retries_down=4,
        http_method=HttpMethod.HEAD,
        url_path="/health/ready",
        expected_codes="200-204,301,302",
        http_version="1.1",
        domain_name="app.example.com",
    )
    pool = Pool(
        id="pool-web",
        name="web pool",
        protocol=PP.HTTP,
        lb_algorithm=LbAlgorithm.ROUND_ROBIN,
        listener_id="li-http",
        timeout_member_connect=3000,
        members=(
            Member(id="m-1", address="10.0.0.11", protocol_port=8080, weight=10),
            Member(id="m-2", address="10.0.0.12", protocol_port=8080, weight=256, backup=True),
            Member(id="m-3", address="10.0.0.13", protocol_port=8080, admin_state_up=False),
            Member(
                id="m-4",
                address="10.0.0.14",
                protocol_port=8080,
                monitor_address="10.0.1.14",
                monitor_port=9000,
            ),
        ),
        healthmonitor=hm,
    )
    listener = Listener(
        id="li-http",
        name="web listener",
        protocol=LP.HTTP,
        protocol_port=80,
        connection_limit=5000,
        allowed_cidrs=("10.0.0.0/8", "192.168.1.0/24"),
        insert_x_forwarded=True,
        timeout_client_data=20000,
        timeout_member_connect=9999,  # the pool's 3000 wins
        timeout_member_data=60000,  # the pool has none: the listener's is used
        default_pool_id="pool-web",
    )
    return lb(
        floating_ip_addresses=(FIP,), listeners=[listener], pools=[pool], flavor=Flavor("lb1-2-4", 2, 4096)
    )


def tcp_and_passthrough(_: Pki) -> LoadBalancerSnapshot:
    """TCP, HTTPS pass-through and PROXY/PROXYV2 pools; TCP and TLS-HELLO monitors; default limits."""
    tcp = Pool(
        id="pool-tcp",
        name="tcp",
        protocol=PP.TCP,
        lb_algorithm=LbAlgorithm.LEAST_CONNECTIONS,
        listener_id="li-tcp",
        members=members(("m-t1", "10.0.0.21", 5432), ("m-t2", "10.0.0.22", 5432)),
        healthmonitor=HealthMonitor(
            id="hm-t", type=HM.TCP, delay=10, timeout=5, max_retries=3, max_retries_down=3
        ),
    )
    passthrough = Pool(
        id="pool-tls",
        name="tls passthrough",
        protocol=PP.HTTPS,
        lb_algorithm=LbAlgorithm.ROUND_ROBIN,
        listener_id="li-https",
        ca_secret_id="sec-ca",  # ignored: pass-through never re-encrypts
        members=members(("m-s1", "10.0.0.31", 443)),
        healthmonitor=HealthMonitor(
            id="hm-s", type=HM.TLS_HELLO, delay=10, timeout=5, max_retries=3, max_retries_down=2
        ),
    )
    proxy = Pool(
        id="pool-proxy",
        name="proxy v1",
        protocol=PP.PROXY,
        lb_algorithm=LbAlgorithm.ROUND_ROBIN,
        listener_id="li-proxy",
        members=members(("m-p1", "10.0.0.41", 80)),
    )
    proxy2 = Pool(
        id="pool-proxy2",
        name="proxy v2",
        protocol=PP.PROXYV2,
        lb_algorithm=LbAlgorithm.ROUND_ROBIN,
        listener_id="li-proxy2",
        members=members(("m-p2", "10.0.0.42", 80)),
    )
    listeners = [
        Listener(id="li-tcp", name="db", protocol=LP.TCP, protocol_port=5432, default_pool_id="pool-tcp"),
        Listener(id="li-https", name="tls", protocol=LP.HTTPS, protocol_port=443, default_pool_id="pool-tls"),
        Listener(id="li-proxy", name="p1", protocol=LP.TCP, protocol_port=8001, default_pool_id="pool-proxy"),
        Listener(
            id="li-proxy2", name="p2", protocol=LP.TCP, protocol_port=8002, default_pool_id="pool-proxy2"
        ),
    ]
    return lb(listeners=listeners, pools=[tcp, passthrough, proxy, proxy2])


def _certs(pki: Pki) -> dict[str, Certificate]:
    return {
        "sec-default": Certificate("sec-default", pki.default_pem),
        "sec-sni": Certificate("sec-sni", pki.sni_pem),
        "sec-client": Certificate("sec-client", pki.client_pem),
        "sec-ca": Certificate("sec-ca", pki.ca_pem),
        "sec-crl": Certificate("sec-crl", pki.crl_pem),
    }


def terminated_https(pki: Pki) -> LoadBalancerSnapshot:
    """TLS termination with a default and an SNI certificate; SNI-only; HTTP_COOKIE persistence."""
    pool = Pool(
        id="pool-app",
        name="app",
        protocol=PP.HTTP,
        lb_algorithm=LbAlgorithm.ROUND_ROBIN,
        listener_id="li-tls",
        session_persistence=SessionPersistence(SessionPersistenceType.HTTP_COOKIE),
        members=members(("m-a1", "10.0.0.51", 8080), ("m-a2", "10.0.0.52", 8080)),
    )
    listeners = [
        Listener(
            id="li-tls",
            name="tls",
            protocol=LP.TERMINATED_HTTPS,
            protocol_port=443,
            secret_id="sec-default",
            sni_secret_id=("sec-sni", "sec-default"),
            insert_x_forwarded=True,
            default_pool_id="pool-app",
        ),
        Listener(
            id="li-sni",
            name="sni only",
            protocol=LP.TERMINATED_HTTPS,
            protocol_port=8443,
            sni_secret_id=("sec-sni",),
        ),
    ]
    return lb(listeners=listeners, pools=[pool], certificates=_certs(pki))


def pool_tls(pki: Pki) -> LoadBalancerSnapshot:
    """TLS to members: CA + CRL + client certificate; without CA (verify none); HTTPS monitor."""
    hm = HealthMonitor(id="hm-x", type=HM.HTTPS, delay=3, timeout=2, max_retries=1, max_retries_down=1)
    verified = Pool(
        id="pool-mtls",
        name="mtls",
        protocol=PP.HTTPS,
        lb_algorithm=LbAlgorithm.ROUND_ROBIN,
        listener_id="li-a",
        ca_secret_id="sec-ca",
        crl_secret_id="sec-crl",
        secret_id="sec-client",
        members=members(("m-x1", "10.0.0.61", 443)),
        healthmonitor=hm,
    )
    unverified = Pool(
        id="pool-noverify",
        name="no verify",
        protocol=PP.HTTPS,
        lb_algorithm=LbAlgorithm.ROUND_ROBIN,
        listener_id="li-b",
        members=members(("m-x2", "10.0.0.62", 443)),
    )
    listeners = [
        Listener(id="li-a", name="a", protocol=LP.TCP, protocol_port=7001, default_pool_id="pool-mtls"),
        Listener(id="li-b", name="b", protocol=LP.TCP, protocol_port=7002, default_pool_id="pool-noverify"),
    ]
    return lb(listeners=listeners, pools=[verified, unverified], certificates=_certs(pki))


def persistence(_: Pki) -> LoadBalancerSnapshot:
    """SOURCE_IP (balance source, consistent hash), APP_COOKIE, cookie persistence on a TCP pool."""
    sp = SessionPersistenceType

    def pool(pid: str, protocol: PoolProtocol, algo: LbAlgorithm, persist: SessionPersistence) -> Pool:
        return Pool(
            id=pid,
            name=pid,
            protocol=protocol,
            lb_algorithm=algo,
            session_persistence=persist,
            members=members((f"m-{pid}", "10.0.0.71", 80)),
        )

    pools = [
        pool("pool-src", PP.HTTP, LbAlgorithm.SOURCE_IP, SessionPersistence(sp.SOURCE_IP)),
        pool("pool-app", PP.HTTP, LbAlgorithm.ROUND_ROBIN, SessionPersistence(sp.APP_COOKIE, "JSESSIONID")),
        pool("pool-odd", PP.HTTP, LbAlgorithm.ROUND_ROBIN, SessionPersistence(sp.APP_COOKIE, "my session")),
        pool("pool-named", PP.HTTP, LbAlgorithm.ROUND_ROBIN, SessionPersistence(sp.HTTP_COOKIE, "LB.route")),
        pool("pool-tcpc", PP.TCP, LbAlgorithm.ROUND_ROBIN, SessionPersistence(sp.HTTP_COOKIE, "X")),
    ]
    listeners = [
        Listener(
            id=f"li-{i}",
            name=f"l{i}",
            protocol=LP.HTTP if p.protocol is PP.HTTP else LP.TCP,
            protocol_port=9000 + i,
            default_pool_id=p.id,
        )
        for i, p in enumerate(pools)
    ]
    return lb(listeners=listeners, pools=pools)


def _rule(
    rid: str, rtype: L7RuleType, compare: L7CompareType, value: str, key: str | None = None, invert=False
):
    return L7Rule(id=rid, type=rtype, compare_type=compare, value=value, key=key, invert=invert)


def l7(_: Pki) -> LoadBalancerSnapshot:
    """Every action, rule type and compare type; invert; odd characters; precedence and skipping."""
    T, C = L7RuleType, L7CompareType
    policies = (
        L7Policy(
            id="po-pool",
            action=L7Action.REDIRECT_TO_POOL,
            position=1,
            redirect_pool_id="pool-api",
            rules=(
                _rule("r-path", T.PATH, C.STARTS_WITH, "/api/"),
                _rule("r-host", T.HOST_NAME, C.ENDS_WITH, ".example.com"),
            ),
        ),
        L7Policy(
            id="po-url",
            action=L7Action.REDIRECT_TO_URL,
            position=2,
            redirect_url="https://example.com/a b?x='1'#f",
            redirect_http_code=301,
            rules=(_rule("r-hdr", T.HEADER, C.EQUAL_TO, "a #b'c\\d $e %f", key="X-It's"),),
        ),
        L7Policy(
            id="po-prefix",
            action=L7Action.REDIRECT_PREFIX,
            position=3,
            redirect_prefix="https://new.example.com",
            rules=(
                _rule("r-cookie", T.COOKIE, C.CONTAINS, "beta", key="features", invert=True),
                _rule("r-re", T.PATH, C.REGEX, "^/a#b\\.(png|jpe?g)$"),
            ),
        ),
        L7Policy(
            id="po-deny",
            action=L7Action.REJECT,
            position=4,
            rules=(
                _rule("r-ft", T.FILE_TYPE, C.EQUAL_TO, ".php"),
                _rule("r-ftre", T.FILE_TYPE, C.REGEX, "\\.(asp|cgi)$", invert=True),
                _rule("r-dash", T.HEADER, C.STARTS_WITH, "-i", key="X-Flag"),
            ),
        ),
        L7Policy(
            id="po-ssl",
            action=L7Action.REJECT,
            position=5,
            rules=(
                _rule("r-used", T.SSL_CONN_HAS_CERT, C.EQUAL_TO, "True"),
                _rule("r-verify", T.SSL_VERIFY_RESULT, C.EQUAL_TO, "0", invert=True),
                _rule("r-dn", T.SSL_DN_FIELD, C.EQUAL_TO, "ops team", key="OU"),
            ),
        ),
        L7Policy(id="po-empty", action=L7Action.REJECT, position=6),  # no rules: skipped
        L7Policy(
            id="po-off",
            action=L7Action.REDIRECT_TO_POOL,
            position=7,
            redirect_pool_id="pool-off",
            rules=(_rule("r-off", T.PATH, C.EQUAL_TO, "/off"),),
        ),  # disabled pool: skipped
    )
    pools = [
        Pool(
            id="pool-default",
            name="default",
            protocol=PP.HTTP,
            lb_algorithm=LbAlgorithm.ROUND_ROBIN,
            listener_id="li-l7",
            members=members(("m-d", "10.0.0.81", 80)),
        ),
        Pool(
            id="pool-api",
            name="api",
            protocol=PP.HTTP,
            lb_algorithm=LbAlgorithm.ROUND_ROBIN,
            members=members(("m-api", "10.0.0.82", 80)),
        ),
        Pool(
            id="pool-off",
            name="off",
            protocol=PP.HTTP,
            lb_algorithm=LbAlgorithm.ROUND_ROBIN,
            admin_state_up=False,
        ),
    ]
    listener = Listener(
        id="li-l7",
        name="l7",
        protocol=LP.HTTP,
        protocol_port=80,
        default_pool_id="pool-default",
        l7policies=policies,
    )
    return lb(listeners=[listener], pools=pools)


def auth_and_prometheus(pki: Pki) -> LoadBalancerSnapshot:
    """user_list basic auth on HTTP; a PROMETHEUS listener with users and a certificate."""
    users = (UserListEntry("admin", SECRET_HASH), UserListEntry("ops user", "$1$x'y$z"))
    listeners = [
        Listener(id="li-web", name="web", protocol=LP.HTTP, protocol_port=80, user_list=users),
        Listener(
            id="li-prom", name="metrics", protocol=LP.PROMETHEUS, protocol_port=9101, user_list=users[:1]
        ),
        Listener(
            id="li-proms",
            name="metrics tls",
            protocol=LP.PROMETHEUS,
            protocol_port=9102,
            secret_id="sec-default",
        ),
    ]
    return lb(listeners=listeners, certificates=_certs(pki))


def admin_state(_: Pki) -> LoadBalancerSnapshot:
    """Disabled listener (no frontend), disabled default pool (no backend: 503), disabled monitor."""
    hm = HealthMonitor(
        id="hm-off", type=HM.TCP, delay=5, timeout=2, max_retries=3, max_retries_down=3, admin_state_up=False
    )
    pools = [
        Pool(
            id="pool-on",
            name="on",
            protocol=PP.TCP,
            lb_algorithm=LbAlgorithm.ROUND_ROBIN,
            listener_id="li-on",
            members=members(("m-on", "10.0.0.91", 80)),
            healthmonitor=hm,
        ),
        Pool(
            id="pool-off",
            name="off",
            protocol=PP.HTTP,
            lb_algorithm=LbAlgorithm.ROUND_ROBIN,
            listener_id="li-nopool",
            admin_state_up=False,
            members=members(("m-off", "10.0.0.92", 80)),
        ),
    ]
    listeners = [
        Listener(id="li-on", name="on", protocol=LP.TCP, protocol_port=81, default_pool_id="pool-on"),
        Listener(
            id="li-nopool", name="no pool", protocol=LP.HTTP, protocol_port=82, default_pool_id="pool-off"
        ),
        Listener(id="li-off", name="off", protocol=LP.HTTP, protocol_port=83, admin_state_up=False),
    ]
    return lb(listeners=listeners, pools=pools)


def lb_disabled(pki: Pki) -> LoadBalancerSnapshot:
    """An LB with admin_state_up=false serves nothing; its process keeps the stats socket."""
    snapshot = http_basic(pki)
    return lb(admin_state_up=False, listeners=snapshot.listeners, pools=snapshot.pools)


def logging_and_ping(_: Pki) -> LoadBalancerSnapshot:
    """Flow log for an HTTP and a TCP listener; a PING monitor (external check)."""
    ping = HealthMonitor(id="hm-ping", type=HM.PING, delay=5, timeout=2, max_retries=2, max_retries_down=2)
    pools = [
        Pool(
            id="pool-h",
            name="h",
            protocol=PP.HTTP,
            lb_algorithm=LbAlgorithm.ROUND_ROBIN,
            listener_id="li-h",
            members=members(("m-h", "10.0.0.101", 80)),
            healthmonitor=ping,
        ),
        Pool(
            id="pool-t",
            name="t",
            protocol=PP.TCP,
            lb_algorithm=LbAlgorithm.ROUND_ROBIN,
            listener_id="li-t",
            members=members(("m-t", "10.0.0.102", 80)),
        ),
    ]
    listeners = [
        Listener(id="li-h", name="h", protocol=LP.HTTP, protocol_port=80, default_pool_id="pool-h"),
        Listener(id="li-t", name="t", protocol=LP.TCP, protocol_port=81, default_pool_id="pool-t"),
    ]
    return lb(listeners=listeners, pools=pools, logging=Logging(enabled=True, topic_name="lb-logs"))


def ipv6_and_limits(_: Pki) -> LoadBalancerSnapshot:
    """IPv6 VIP, members and monitor address; a monitor delay past HAProxy's timer range; 0 timeouts."""
    hm = HealthMonitor(
        id="hm-6",
        type=HM.HTTP,
        delay=2147483647,
        timeout=2147483,
        max_retries=10,
        max_retries_down=10,
        url_path="/",
        expected_codes="200",
        http_version="1.0",
    )
    pool = Pool(
        id="pool-6",
        name="v6",
        protocol=PP.HTTP,
        lb_algorithm=LbAlgorithm.ROUND_ROBIN,
        listener_id="li-6",
        timeout_member_connect=86400000,
        timeout_member_data=0,
        members=(Member(id="m-6", address="fd00::10", protocol_port=80, monitor_address="fd00::11"),),
        healthmonitor=hm,
    )
    listener = Listener(
        id="li-6",
        name="v6",
        protocol=LP.HTTP,
        protocol_port=80,
        default_pool_id="pool-6",
        connection_limit=1_000_000,
        timeout_client_data=0,
    )
    return lb(vip_address="fd00::1", listeners=[listener], pools=[pool], flavor=Flavor("lb1-8-16", 8, 16384))


CASES: dict[str, Callable[[Pki], LoadBalancerSnapshot]] = {
    "http_basic": http_basic,
    "tcp_and_passthrough": tcp_and_passthrough,
    "terminated_https": terminated_https,
    "pool_tls": pool_tls,
    "persistence": persistence,
    "l7": l7,
    "auth_and_prometheus": auth_and_prometheus,
    "admin_state": admin_state,
    "lb_disabled": lb_disabled,
    "logging_and_ping": logging_and_ping,
    "ipv6_and_limits": ipv6_and_limits,
}
# Warnings HAProxy prints for a case, on purpose (a 0 timeout means "none" and it says so).
EXPECTED_WARNINGS: dict[str, tuple[str, ...]] = {
    "ipv6_and_limits": ("missing timeouts for frontend 'li-6'", "missing timeouts for backend 'pool-6'"),
}
