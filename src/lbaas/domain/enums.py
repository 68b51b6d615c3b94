"""Every enumeration of the API, with the exact wire values of Gcore."""

from __future__ import annotations

from enum import StrEnum


class ProvisioningStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DELETED = "DELETED"
    ERROR = "ERROR"
    PENDING_CREATE = "PENDING_CREATE"
    PENDING_DELETE = "PENDING_DELETE"
    PENDING_UPDATE = "PENDING_UPDATE"


class OperatingStatus(StrEnum):
    DEGRADED = "DEGRADED"
    DRAINING = "DRAINING"
    ERROR = "ERROR"
    NO_MONITOR = "NO_MONITOR"
    OFFLINE = "OFFLINE"
    ONLINE = "ONLINE"


class TaskState(StrEnum):
    NEW = "NEW"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    ERROR = "ERROR"


class ListenerProtocol(StrEnum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    PROMETHEUS = "PROMETHEUS"
    TCP = "TCP"
    TERMINATED_HTTPS = "TERMINATED_HTTPS"
    UDP = "UDP"


class PoolProtocol(StrEnum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    PROXY = "PROXY"
    PROXYV2 = "PROXYV2"
    TCP = "TCP"
    UDP = "UDP"


class LbAlgorithm(StrEnum):
    LEAST_CONNECTIONS = "LEAST_CONNECTIONS"
    ROUND_ROBIN = "ROUND_ROBIN"
    SOURCE_IP = "SOURCE_IP"


class HealthMonitorType(StrEnum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    K8S = "K8S"
    PING = "PING"
    TCP = "TCP"
    TLS_HELLO = "TLS-HELLO"
    UDP_CONNECT = "UDP-CONNECT"


class HttpMethod(StrEnum):
    CONNECT = "CONNECT"
    DELETE = "DELETE"
    GET = "GET"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"
    PATCH = "PATCH"
    POST = "POST"
    PUT = "PUT"
    TRACE = "TRACE"


class SessionPersistenceType(StrEnum):
    APP_COOKIE = "APP_COOKIE"
    HTTP_COOKIE = "HTTP_COOKIE"
    SOURCE_IP = "SOURCE_IP"


class L7Action(StrEnum):
    REDIRECT_PREFIX = "REDIRECT_PREFIX"
    REDIRECT_TO_POOL = "REDIRECT_TO_POOL"
    REDIRECT_TO_URL = "REDIRECT_TO_URL"
    REJECT = "REJECT"


class L7RuleType(StrEnum):
    COOKIE = "COOKIE"
    FILE_TYPE = "FILE_TYPE"
    HEADER = "HEADER"
    HOST_NAME = "HOST_NAME"
    PATH = "PATH"
    SSL_CONN_HAS_CERT = "SSL_CONN_HAS_CERT"
    SSL_DN_FIELD = "SSL_DN_FIELD"
    SSL_VERIFY_RESULT = "SSL_VERIFY_RESULT"


class L7CompareType(StrEnum):
    CONTAINS = "CONTAINS"
    ENDS_WITH = "ENDS_WITH"
    EQUAL_TO = "EQUAL_TO"
    REGEX = "REGEX"
    STARTS_WITH = "STARTS_WITH"


class Connectivity(StrEnum):
    L2 = "L2"
    L3 = "L3"


class IpFamily(StrEnum):
    DUAL = "dual"
    IPV4 = "ipv4"
    IPV6 = "ipv6"
