"""L7 policies on a real HAProxy: every action, every rule type, every compare type, invert,
precedence, and user strings that would break an unescaped configuration.

Most policies redirect to a URL naming them, so the ``Location`` of an answer tells which
policy matched (and a 200 from the default pool that none did).
"""

from __future__ import annotations

import socket

import pytest

from tests.dataplane.conftest import DataPlane, create_lb, finish, get, http_client

ODD_VALUE = "a #b 'c' $e \\f ${HOME} %[src]"


def add_policy(client, listener_id: str, action: str, rules: list[dict], **kw) -> str:
    policies = client.cloud.load_balancers.l7_policies
    task = finish(client, policies.create(listener_id=listener_id, action=action, **kw))
    policy_id = task.created_resources.l7polices[0]
    for rule in rules:
        finish(client, policies.rules.create(policy_id, **rule))
    return policy_id


def rule(type_: str, compare: str, value: str, **kw) -> dict:
    return {"type": type_, "compare_type": compare, "value": value, **kw}


def to_url(tag: str, **kw) -> dict:
    return {"redirect_url": f"http://example.com/{tag}", **kw}


@pytest.fixture(scope="module")
def l7(dataplane: DataPlane):
    default, api = dataplane.backend("l7-default"), dataplane.backend("l7-api")
    client = dataplane.client()
    pool = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    lb = create_lb(
        client,
        name="l7-lb",
        listeners=[
            {
                "name": "web",
                "protocol": "HTTP",
                "protocol_port": 8080,
                "pools": [{"name": "default", **pool, "members": [default.member]}],
            }
        ],
    )
    listener = client.cloud.load_balancers.listeners.list(load_balancer_id=lb.id).results[0]
    api_pool = finish(
        client,
        client.cloud.load_balancers.pools.create(
            load_balancer_id=lb.id, name="api", **pool, members=[api.member]
        ),
    ).created_resources.pools[0]
    li = listener.id
    url = "REDIRECT_TO_URL"
    add_policy(client, li, url, [rule("HOST_NAME", "EQUAL_TO", "www.example.com")], **to_url("host-eq"))
    add_policy(client, li, url, [rule("PATH", "STARTS_WITH", "/beg/")], **to_url("path-beg"))
    add_policy(
        client, li, url, [rule("PATH", "ENDS_WITH", ".end")], **to_url("path-end", redirect_http_code=301)
    )
    add_policy(
        client, li, url, [rule("PATH", "CONTAINS", "/sub/")], **to_url("path-sub", redirect_http_code=303)
    )
    add_policy(client, li, url, [rule("PATH", "REGEX", "^/v[0-9]+/items$")], **to_url("path-reg"))
    add_policy(
        client, li, url, [rule("PATH", "EQUAL_TO", "/exact")], **to_url("path-eq", redirect_http_code=307)
    )
    add_policy(client, li, url, [rule("FILE_TYPE", "EQUAL_TO", "jpg")], **to_url("file-eq"))
    add_policy(client, li, url, [rule("FILE_TYPE", "REGEX", r"\.(gif|png)$")], **to_url("file-reg"))
    add_policy(client, li, url, [rule("HEADER", "EQUAL_TO", "gold", key="X-Tier")], **to_url("header-eq"))
    add_policy(client, li, url, [rule("HEADER", "CONTAINS", "beta", key="X-Channel")], **to_url("header-sub"))
    add_policy(
        client, li, url, [rule("COOKIE", "STARTS_WITH", "vip-", key="session")], **to_url("cookie-beg")
    )
    add_policy(client, li, url, [rule("COOKIE", "ENDS_WITH", "-x", key="plan")], **to_url("cookie-end"))
    # Two rules ANDed, the second inverted: /inv/ without "X-Ok: yes" is rejected.
    add_policy(
        client,
        li,
        "REJECT",
        [rule("PATH", "STARTS_WITH", "/inv/"), rule("HEADER", "EQUAL_TO", "yes", key="X-Ok", invert=True)],
    )
    add_policy(
        client,
        li,
        "REDIRECT_PREFIX",
        [rule("PATH", "STARTS_WITH", "/old/")],
        redirect_prefix="https://new.example.com",
        redirect_http_code=308,
    )
    add_policy(
        client,
        li,
        "REDIRECT_TO_POOL",
        [rule("HOST_NAME", "ENDS_WITH", ".api.example.com")],
        redirect_pool_id=api_pool,
    )
    # Precedence: a REJECT wins over a redirect and a pool whatever the positions.
    add_policy(client, li, url, [rule("PATH", "STARTS_WITH", "/both")], **to_url("both"), position=1)
    add_policy(client, li, "REJECT", [rule("PATH", "EQUAL_TO", "/both/rejected")])
    return client, lb, li


def where(response) -> str:
    """``200 <backend>``, ``403``, or ``<code> <location>``."""
    if response.status_code in (301, 302, 303, 307, 308):
        return f"{response.status_code} {response.headers['location']}"
    if response.status_code == 200:
        return f"200 {response.text}"
    return str(response.status_code)


CASES = [
    # (path, headers, expected)
    ("/", {}, "200 l7-default"),
    ("/", {"Host": "www.example.com"}, "302 http://example.com/host-eq"),
    ("/", {"Host": "WWW.Example.COM"}, "302 http://example.com/host-eq"),  # host names: any case
    ("/", {"Host": "www.example.com.evil"}, "200 l7-default"),
    ("/beg/x", {}, "302 http://example.com/path-beg"),
    ("/x/beg/", {}, "200 l7-default"),
    ("/a/b.end", {}, "301 http://example.com/path-end"),
    ("/a/b.end/no", {}, "200 l7-default"),
    ("/a/sub/b", {}, "303 http://example.com/path-sub"),
    ("/v12/items", {}, "302 http://example.com/path-reg"),
    ("/v12/items/7", {}, "200 l7-default"),
    ("/vx/items", {}, "200 l7-default"),
    ("/exact", {}, "307 http://example.com/path-eq"),
    ("/exact/", {}, "200 l7-default"),
    ("/img/cat.jpg", {}, "302 http://example.com/file-eq"),
    ("/img/cat.png", {}, "302 http://example.com/file-reg"),
    ("/img/cat.gif", {}, "302 http://example.com/file-reg"),
    ("/img/cat.png.txt", {}, "200 l7-default"),
    ("/", {"X-Tier": "gold"}, "302 http://example.com/header-eq"),
    ("/", {"X-Tier": "golden"}, "200 l7-default"),
    ("/", {"X-Channel": "pre-beta-2"}, "302 http://example.com/header-sub"),
    ("/", {"Cookie": "a=1; session=vip-42"}, "302 http://example.com/cookie-beg"),
    ("/", {"Cookie": "session=regular"}, "200 l7-default"),
    ("/", {"Cookie": "plan=basic-x"}, "302 http://example.com/cookie-end"),
    ("/inv/page", {}, "403"),
    ("/inv/page", {"X-Ok": "yes"}, "200 l7-default"),
    ("/inv/page", {"X-Ok": "no"}, "403"),
    ("/old/page?q=1", {}, "308 https://new.example.com/old/page?q=1"),
    ("/", {"Host": "eu.api.example.com"}, "200 l7-api"),
    ("/", {"Host": "api.example.com"}, "200 l7-default"),
    ("/both/x", {}, "302 http://example.com/both"),
    ("/both/rejected", {}, "403"),
]


def test_actions_rule_types_compare_types_and_invert(l7) -> None:
    _, lb, _ = l7
    base = f"http://{lb.vip_address}:8080"
    with http_client() as http:
        got = [(path, headers, where(http.get(base + path, headers=headers))) for path, headers, _ in CASES]
    assert got == CASES


def test_policy_order_and_removal(l7) -> None:
    """Position orders redirects; a removed policy stops matching; a policy left without
    rules is skipped."""
    client, lb, li = l7
    url = f"http://{lb.vip_address}:8080/order"
    policies = client.cloud.load_balancers.l7_policies
    order = [rule("PATH", "STARTS_WITH", "/order")]
    first = add_policy(client, li, "REDIRECT_TO_URL", order, **to_url("first"), position=1)
    assert where(get(url)) == "302 http://example.com/first"
    second = add_policy(client, li, "REDIRECT_TO_URL", order, **to_url("second"), position=1)
    assert where(get(url)) == "302 http://example.com/second"
    finish(client, policies.delete(second))
    assert where(get(url)) == "302 http://example.com/first"
    (only,) = policies.rules.list(first).results
    finish(client, policies.rules.delete(only.id, l7policy_id=first))
    assert where(get(url)) == "200 l7-default"
    finish(client, policies.delete(first))


def test_user_strings_are_literal_end_to_end(l7) -> None:
    """Values that would end a word, start a comment or expand a variable in haproxy.cfg match
    only themselves: ``#``, quotes, spaces, ``$``, a backslash, ``%[...]``."""
    client, lb, li = l7
    add_policy(
        client,
        li,
        "REDIRECT_TO_URL",
        [rule("HEADER", "EQUAL_TO", ODD_VALUE, key="X-Odd#Key'1")],
        redirect_url="http://example.com/odd?a='1'&p=5%25#frag",
    )
    add_policy(
        client, li, "REDIRECT_TO_URL", [rule("HEADER", "REGEX", "^a#b$", key="X-Hash")], **to_url("hash")
    )
    add_policy(client, li, "REJECT", [rule("PATH", "CONTAINS", "/it's")])
    for policy in client.cloud.load_balancers.l7_policies.list().results:
        assert policy.provisioning_status == "ACTIVE", policy

    def raw(path: str, headers: dict[str, str]) -> str:
        lines = [f"GET {path} HTTP/1.1", f"Host: {lb.vip_address}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        with socket.create_connection((lb.vip_address, 8080), timeout=5) as s:
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        head = data.split(b"\r\n\r\n")[0].decode()
        status = head.split()[1]
        location = [h.split(": ", 1)[1] for h in head.split("\r\n") if h.lower().startswith("location:")]
        return f"{status} {location[0]}" if location else status

    assert raw("/", {"X-Odd#Key'1": ODD_VALUE}) == "302 http://example.com/odd?a='1'&p=5%25#frag"
    assert raw("/", {"X-Odd#Key'1": "a "}) == "200"  # what an unquoted '#' would have left
    assert raw("/", {"X-Hash": "a#b"}) == "302 http://example.com/hash"
    assert raw("/", {"X-Hash": "a"}) == "200"  # '^a' is what an unquoted regex would have been
    assert raw("/x/it's/y", {}) == "403"
    assert raw("/x/its/y", {}) == "200"
