"""A throw-away PKI for the TLS tests: CAs and the certificates they issue (EC P-256: fast).

``Ca(name).issue("www.one.test")`` gives a leaf for a DNS name (and 127.0.0.1 as an IP SAN);
``client=True`` makes a client certificate. ``.payload`` is the body of the secrets API's
``upload_tls_certificate`` (certificate, chain, key); ``.server_context()`` and
``Ca.client_context()`` are ``ssl`` contexts for the backends and clients of the tests.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class Issued:
    """A certificate, its issuer's certificate (the chain) and its key, as PEM."""

    cn: str
    cert_pem: str
    chain_pem: str
    key_pem: str

    @property
    def payload(self) -> dict[str, str]:
        return {
            "certificate": self.cert_pem,
            "certificate_chain": self.chain_pem,
            "private_key": self.key_pem,
        }

    def _files(self) -> tuple[str, str]:
        d = Path(tempfile.mkdtemp(prefix="lbaas-pki-"))
        (d / "cert.pem").write_text(self.cert_pem + self.chain_pem)
        (d / "key.pem").write_text(self.key_pem)
        return str(d / "cert.pem"), str(d / "key.pem")

    def server_context(self, client_ca: Ca | None = None) -> ssl.SSLContext:
        """A server context with this certificate; ``client_ca``: require client certificates of it."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*self._files())
        if client_ca is not None:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=client_ca.cert_pem)
        return ctx


class Ca:
    """A self-signed certificate authority."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - dt.timedelta(days=1))
            .not_valid_after(_NOW + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = _cert_pem(self.cert)

    @property
    def payload(self) -> dict[str, str]:
        """The CA as a secret (certificate and key): what ``ca_secret_id`` points at."""
        return {"certificate": self.cert_pem, "certificate_chain": "", "private_key": _key_pem(self.key)}

    def issue(self, cn: str, *, client: bool = False) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_NOW - dt.timedelta(days=1))
            .not_valid_after(_NOW + dt.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                critical=False,
            )
        )
        if not client:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(cn), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(cn, _cert_pem(cert), self.cert_pem, _key_pem(key))

    def client_context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        """A client context that trusts this CA only (hostname checked)."""
        ctx = ssl.create_default_context(cadata=self.cert_pem)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx


def peer_cn(sock: ssl.SSLSocket) -> str:
    """The common name of the certificate the server presented."""
    cert = sock.getpeercert()
    return dict(x[0] for x in cert["subject"])["commonName"]
