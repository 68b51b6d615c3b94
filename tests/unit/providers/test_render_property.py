"""Property: every value the API accepts reaches haproxy.cfg meaning exactly itself.

Values are drawn, then kept only if the API's own validation accepts them (the oracle is
``lbaas.domain.validation`` and the request-schema patterns), so the test covers exactly
the accepted input space. First property: HAProxy accepts every such configuration
(``haproxy -c``). Second, on a bounded number of examples: HAProxy is started and a
request carrying the literal makes the rule fire (REJECT → 403, REDIRECT → the exact
Location), while a request without it does not.
"""

from __future__ import annotations

import http.client
import string

import pytest
from haproxy_helpers import check, need_haproxy, random_loopback, started, workdir
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from samples import lb

from lbaas.domain import validation
from lbaas.domain.enums import (
    HealthMonitorType,
    L7Action,
    L7CompareType,
    L7RuleType,
    LbAlgorithm,
    ListenerProtocol,
    PoolProtocol,
    SessionPersistenceType,
)
from lbaas.domain.model import (
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    Member,
    Pool,
    SessionPersistence,
    UserListEntry,
)
from lbaas.domain.pcre2 import check_regex
from lbaas.errors import ValidationFailed
from lbaas.providers.haproxy.render import render

NAME_PATTERN = r"\A[a-zA-Z0-9][a-zA-Z 0-9._\-]{1,61}[a-zA-Z0-9._]\Z"  # api/schemas/common.py
USERNAME_PATTERN = r"\A[a-zA-Z0-9][a-zA-Z 0-9._\-]{1,30}[a-zA-Z0-9._]\Z"  # api/schemas/listeners.py
DOMAIN_PATTERN = r"\A[A-Za-z0-9._-]{1,253}\Z"
TOKEN = string.ascii_letters + string.digits + "!#$%&'*+.^_`|~-"
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
ODD = " #'\\$%\"`;{}()[]<>|&*?!"  # the characters quoting is about, drawn often

names = st.from_regex(NAME_PATTERN, fullmatch=True)
text = st.text(alphabet=st.sampled_from(PRINTABLE + ODD * 3) | st.characters(), min_size=1, max_size=80)


def accepted(fn, *args, **kwargs) -> bool:
    try:
        fn(*args, **kwargs)
    except ValidationFailed:
        return False
    return True


def pcre_quote(literal: str) -> str:
    """A PCRE2 pattern matching ``literal`` exactly (a backslash before every non-alphanumeric)."""
    return "^" + "".join(c if c.isalnum() else "\\" + c for c in literal) + "$"


@st.composite
def rules(draw) -> L7Rule:
    rule_type = draw(st.sampled_from(list(L7RuleType)))
    compare = draw(st.sampled_from(sorted(validation.L7_COMPARE_TYPES[rule_type])))
    key = (
        draw(st.text(alphabet=TOKEN, min_size=1, max_size=20))
        if rule_type in validation.L7_KEYED_RULE_TYPES
        else None
    )
    if rule_type is L7RuleType.SSL_DN_FIELD:
        key = draw(st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,10}\Z", fullmatch=True))
    if rule_type is L7RuleType.SSL_CONN_HAS_CERT:
        value = "True"
    elif rule_type is L7RuleType.SSL_VERIFY_RESULT:
        value = str(draw(st.integers(0, 99)))
    elif compare is L7CompareType.REGEX:
        value = draw(st.one_of(text.map(pcre_quote), text.filter(lambda v: check_regex(v) is None)))
    else:
        value = draw(text)
    assume(accepted(validation.check_l7_rule, rule_type, compare, key, value))
    rid = f"r-{draw(st.integers(0, 10**9))}"
    return L7Rule(
        id=rid, type=rule_type, compare_type=compare, key=key, value=value, invert=draw(st.booleans())
    )


urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https"]),
    st.from_regex(r"\A[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,2}\Z", fullmatch=True),
    st.text(alphabet=st.sampled_from(PRINTABLE[1:] + "#'\\$%`"), max_size=60),
)


@st.composite
def policies(draw, pool_id: str) -> L7Policy:
    action = draw(st.sampled_from(list(L7Action)))
    fields: dict[str, object] = {}
    if action is L7Action.REDIRECT_TO_URL:
        fields["redirect_url"] = draw(urls)
    elif action is L7Action.REDIRECT_PREFIX:
        fields["redirect_prefix"] = draw(urls)
    elif action is L7Action.REDIRECT_TO_POOL:
        fields["redirect_pool_id"] = pool_id
    if action in (L7Action.REDIRECT_TO_URL, L7Action.REDIRECT_PREFIX):
        fields["redirect_http_code"] = draw(st.sampled_from(sorted(validation.REDIRECT_HTTP_CODES)))
    assume(accepted(validation.check_l7_policy, action, listener_protocol="HTTP", **fields))
    drawn = draw(st.lists(rules(), min_size=1, max_size=3, unique_by=lambda r: r.id))
    pid = f"po-{draw(st.integers(0, 10**9))}"
    return L7Policy(id=pid, action=action, position=1, rules=tuple(drawn), **fields)  # type: ignore[arg-type]


@st.composite
def snapshots(draw):
    url_path = draw(st.text(alphabet=st.sampled_from(PRINTABLE + ODD), max_size=40).map(lambda p: "/" + p))
    assume(validation._url_path_problem(url_path) is None)
    hm = HealthMonitor(
        id="hm",
        type=HealthMonitorType.HTTP,
        delay=5,
        timeout=2,
        max_retries=2,
        max_retries_down=2,
        url_path=url_path,
        domain_name=draw(st.from_regex(DOMAIN_PATTERN, fullmatch=True)),
        expected_codes="200",
    )
    cookie = draw(names)
    pool = Pool(
        id="pool",
        name=draw(names),
        protocol=PoolProtocol.HTTP,
        lb_algorithm=LbAlgorithm.ROUND_ROBIN,
        listener_id="li",
        session_persistence=SessionPersistence(
            draw(st.sampled_from([SessionPersistenceType.APP_COOKIE, SessionPersistenceType.HTTP_COOKIE])),
            cookie,
        ),
        members=(Member(id="m", address="127.0.0.1", protocol_port=1),),
        healthmonitor=hm,
    )
    users = draw(
        st.lists(
            st.builds(
                UserListEntry,
                st.from_regex(USERNAME_PATTERN, fullmatch=True),
                st.text(alphabet=st.sampled_from(PRINTABLE + ODD), min_size=1, max_size=128),
            ),
            max_size=3,
            unique_by=lambda u: u.username,
        )
    )
    pols = draw(st.lists(policies("pool"), max_size=4, unique_by=lambda p: p.id))
    rule_ids = [r.id for p in pols for r in p.rules]
    assume(len(rule_ids) == len(set(rule_ids)))
    listener = Listener(
        id="li",
        name=draw(names),
        protocol=ListenerProtocol.HTTP,
        protocol_port=80,
        default_pool_id="pool",
        user_list=tuple(users),
        l7policies=tuple(pols),
    )
    return lb(name=draw(names), listeners=[listener], pools=[pool])


@pytest.fixture(scope="module", autouse=True)
def _haproxy() -> None:
    need_haproxy()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(snapshot=snapshots())
def test_haproxy_accepts_every_accepted_value(snapshot) -> None:
    with workdir() as wd:
        result = check(wd.write(render(snapshot, wd.env())))
        assert result.returncode == 0, result.stdout + result.stderr


header_keys = st.text(alphabet=TOKEN, min_size=1, max_size=16).map(lambda k: "X-" + k)
header_values = st.text(
    alphabet=st.sampled_from(PRINTABLE.replace('"', "") + ODD.replace('"', "") * 3), max_size=50
)
path_literals = st.text(
    alphabet=string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/", min_size=1, max_size=40
)


def _request(vip: str, port: int, path: str, headers: dict[str, str]) -> tuple[int, str | None]:
    conn = http.client.HTTPConnection(vip, port, timeout=5)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Location")
    finally:
        conn.close()


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    key=header_keys,
    value=header_values.map(str.strip).filter(bool),
    regex_key=header_keys,
    regex_value=header_values.map(str.strip).filter(bool),
    path=path_literals,
    url=urls,
)
def test_each_rule_matches_its_literal(key, value, regex_key, regex_value, path, url) -> None:
    """REJECT on an exact header; REJECT on a PCRE-quoted header; REDIRECT on an exact path."""
    assume(key.lower() != regex_key.lower())
    assert accepted(validation.check_l7_rule, "HEADER", "EQUAL_TO", key, value)
    assert accepted(validation.check_l7_rule, "HEADER", "REGEX", regex_key, pcre_quote(regex_value))
    assume(
        accepted(validation.check_l7_policy, "REDIRECT_TO_URL", listener_protocol="HTTP", redirect_url=url)
    )
    vip = random_loopback()
    with workdir() as wd:
        from haproxy_helpers import free_port

        port = free_port(vip)
        T, C = L7RuleType, L7CompareType
        pols = (
            L7Policy(
                id="p1",
                action=L7Action.REJECT,
                position=1,
                rules=(L7Rule("r1", T.HEADER, C.EQUAL_TO, value, key),),
            ),
            L7Policy(
                id="p2",
                action=L7Action.REJECT,
                position=2,
                rules=(L7Rule("r2", T.HEADER, C.REGEX, pcre_quote(regex_value), regex_key),),
            ),
            L7Policy(
                id="p3",
                action=L7Action.REDIRECT_TO_URL,
                position=3,
                redirect_url=url,
                redirect_http_code=307,
                rules=(L7Rule("r3", T.PATH, C.EQUAL_TO, "/" + path),),
            ),
        )
        listener = Listener(
            id="li", name="web", protocol=ListenerProtocol.HTTP, protocol_port=port, l7policies=pols
        )
        cfg = wd.write(render(lb(vip_address=vip, listeners=[listener]), wd.env()))
        with started(cfg, wait_for=(vip, port)):
            assert _request(vip, port, "/nothing-here", {}) == (503, None)  # no pool: nothing fired
            assert _request(vip, port, "/", {key: value})[0] == 403
            assert _request(vip, port, "/", {key: value + "x"})[0] == 503
            assert _request(vip, port, "/", {regex_key: regex_value})[0] == 403
            assert _request(vip, port, "/" + path, {}) == (307, url)
