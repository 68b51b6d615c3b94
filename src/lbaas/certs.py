"""TLS certificate bundles and encryption of secret payloads at rest.

Parsing (``parse_pem_bundle`` for the v2 secret create, ``parse_pkcs12`` for
the deprecated v1 create) turns a user upload into a :class:`CertBundle` whose
``pem`` is exactly what HAProxy's ``crt`` wants: leaf certificate, chain,
private key. Everything is re-serialised from the parsed objects, so text
around the PEM blocks never reaches the data plane. Bad input raises
:class:`lbaas.errors.ValidationFailed` naming the exact field.

Decisions (documented here, tested in ``tests/unit/test_certs.py``):

* An expired leaf certificate is refused (400 on ``payload.certificate``).
  A not-yet-valid leaf is accepted (issuers back-date little; clocks skew).
  Expired chain certificates are accepted: cross-signed roots in real chains
  expire before the chain does (e.g. Let's Encrypt / DST Root CA X3).
* Extra certificates after the first one in ``certificate`` are treated as
  chain, in front of ``certificate_chain``; the leaf is dropped from the chain
  if it is repeated there. The chain's order and signatures are not verified.
* Keys: RSA (>= 2048 bits, OpenSSL's default security level refuses smaller
  ones, so HAProxy would fail to start), EC, Ed25519, Ed448. Encrypted keys
  are refused with a message saying so. ``EC PARAMETERS`` blocks are ignored.
* Each PEM field is limited to 64 KiB; the PKCS#12 payload to 96 KiB of base64.

``SecretBox`` encrypts payloads with Fernet (AES-128-CBC + HMAC-SHA256). The
key is ``LBAAS_SECRET_KEY`` when set (a comma-separated list allows rotation:
the first key encrypts, all keys decrypt) or else ``<data_dir>/secret.key``,
created once, mode 0600, race-free between processes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from lbaas import files
from lbaas.errors import ValidationFailed

__all__ = [
    "KEY_FILE_NAME",
    "CertBundle",
    "SecretBox",
    "load_or_create_key",
    "parse_pem_bundle",
    "parse_pkcs12",
]

log = logging.getLogger(__name__)

KEY_FILE_NAME = "secret.key"
MAX_PEM_CHARS = 64 * 1024
MAX_PKCS12_B64_CHARS = 96 * 1024
MIN_RSA_BITS = 2048

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
)

# The body may not contain "-----", so a BEGIN without its END costs linear time, not quadratic.
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n((?:[^-]|-(?!----))*)-----END \1-----")
_KEY_LABELS = frozenset({"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"})
_F_CERT = "payload.certificate"
_F_KEY = "payload.private_key"
_F_CHAIN = "payload.certificate_chain"


@dataclass(frozen=True)
class CertBundle:
    """A validated TLS certificate bundle, ready for HAProxy."""

    pem: str
    not_after: dt.datetime
    algorithm: str
    bit_length: int
    subject_cn: str | None
    sans: tuple[str, ...]


# --------------------------------------------------------------------------- PEM


def parse_pem_bundle(certificate: str, private_key: str, certificate_chain: str | None) -> CertBundle:
    """Validate the v2 secret payload (PEM certificate, key, chain) and build a bundle."""
    certs = _load_certs(certificate, _F_CERT, required=True)
    chain = certs[1:] + _load_certs(certificate_chain, _F_CHAIN, required=False)
    key = _load_private_key(private_key, _F_KEY)
    return _build_bundle(certs[0], key, chain, cert_field=_F_CERT, key_field=_F_KEY)


def _check_text(value: object, field: str, *, limit: int = MAX_PEM_CHARS) -> str:
    """Return ``value`` if it is a string of acceptable size, else raise on ``field``."""
    if not isinstance(value, str):
        raise ValidationFailed.field(field, "must be a string")
    if len(value) > limit:
        raise ValidationFailed.field(field, f"is too large (more than {limit} characters)")
    return value


def _pem_blocks(text: str) -> list[tuple[str, str]]:
    """Return the ``(label, full block)`` PEM blocks in ``text``, normalising line ends."""
    text = text.replace("\r\n", "\n")
    return [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(text)]


def _load_certs(text: str | None, field: str, *, required: bool) -> list[x509.Certificate]:
    """Parse every PEM certificate in ``text``; only ``CERTIFICATE`` blocks are allowed."""
    if text is None and not required:
        return []
    text = _check_text(text, field)
    blocks = _pem_blocks(text)
    if not blocks:
        if not required and not text.strip():
            return []
        raise ValidationFailed.field(field, "is not a PEM certificate (no -----BEGIN CERTIFICATE----- block)")
    certs = []
    for label, block in blocks:
        if label != "CERTIFICATE":
            raise ValidationFailed.field(field, f"must contain only certificates, found a '{label}' block")
        try:
            certs.append(x509.load_pem_x509_certificate(block.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            raise ValidationFailed.field(field, "contains a malformed PEM certificate") from None
    return certs


def _load_private_key(text: str, field: str) -> PrivateKey:
    """Parse exactly one unencrypted PEM private key from ``text``."""
    blocks = [(lbl, blk) for lbl, blk in _pem_blocks(_check_text(text, field)) if lbl != "EC PARAMETERS"]
    if any(lbl == "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED" in blk for lbl, blk in blocks):
        raise ValidationFailed.field(field, "is encrypted; upload the private key without a passphrase")
    keys = [blk for lbl, blk in blocks if lbl in _KEY_LABELS]
    if len(blocks) != 1 or len(keys) != 1:
        raise ValidationFailed.field(field, "must contain exactly one PEM private key")
    try:
        key = serialization.load_pem_private_key(keys[0].encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise ValidationFailed.field(field, "contains a malformed or unsupported PEM private key") from None
    return _check_key_type(key, field)


def _check_key_type(key: object, field: str) -> PrivateKey:
    """Accept RSA (>= 2048 bits), EC, Ed25519 and Ed448 keys only."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValidationFailed.field(
                field, f"RSA key of {key.key_size} bits is too small (minimum {MIN_RSA_BITS})"
            )
        return key
    if isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return key
    raise ValidationFailed.field(field, "unsupported key type (use RSA, EC, Ed25519 or Ed448)")


# --------------------------------------------------------------------------- PKCS#12


def parse_pkcs12(payload_b64: str, passphrase: str | None = None) -> CertBundle:
    """Validate a base64 PKCS#12 archive (deprecated v1 secret create) and build a bundle."""
    text = _check_text(payload_b64, "payload", limit=MAX_PKCS12_B64_CHARS)
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed.field("payload", "is not valid base64") from None
    password = passphrase.encode("utf-8") if passphrase is not None else None
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except (ValueError, TypeError):
        raise ValidationFailed.field(
            "payload", "is not a PKCS#12 archive or the passphrase is wrong"
        ) from None
    if cert is None:
        raise ValidationFailed.field("payload", "PKCS#12 archive contains no certificate")
    if key is None:
        raise ValidationFailed.field("payload", "PKCS#12 archive contains no private key")
    key = _check_key_type(key, "payload")
    return _build_bundle(cert, key, list(extra), cert_field="payload", key_field="payload")


# --------------------------------------------------------------------------- common


def _build_bundle(
    leaf: x509.Certificate,
    key: PrivateKey,
    chain: list[x509.Certificate],
    *,
    cert_field: str,
    key_field: str,
) -> CertBundle:
    """Check key/certificate match and validity, then assemble the HAProxy PEM."""
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        raise ValidationFailed.field(key_field, "does not match the certificate")
    not_after = leaf.not_valid_after_utc
    if not_after <= dt.datetime.now(dt.UTC):
        raise ValidationFailed.field(cert_field, f"expired on {not_after.isoformat()}")
    leaf_fp = leaf.fingerprint(hashes.SHA256())
    chain = [c for c in chain if c.fingerprint(hashes.SHA256()) != leaf_fp]
    pem_certs = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in [leaf, *chain])
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    algorithm, bits = _key_info(key)
    return CertBundle(
        pem=pem_certs + pem_key,
        not_after=not_after,
        algorithm=algorithm,
        bit_length=bits,
        subject_cn=_subject_cn(leaf),
        sans=_dns_sans(leaf),
    )


def _spki(public_key: object) -> bytes:
    """DER SubjectPublicKeyInfo of a public key, for comparison."""
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_info(key: PrivateKey) -> tuple[str, int]:
    """Return the (algorithm name, bit length) metadata of a key."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ED25519", 256
    return "ED448", 448


def _subject_cn(cert: x509.Certificate) -> str | None:
    """The subject's first common name, or None."""
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _dns_sans(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names of the subjectAltName extension (empty if absent)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(ext.value.get_values_for_type(x509.DNSName))


# --------------------------------------------------------------------------- encryption at rest


class SecretBox:
    """Symmetric encryption of secret payloads for storage in a DB text column."""

    def __init__(self, fernet: MultiFernet) -> None:
        self._fernet = fernet

    @classmethod
    def from_key(cls, key: bytes | str) -> SecretBox:
        """Build from a Fernet key, or comma-separated keys (the first one encrypts)."""
        return cls(MultiFernet([Fernet(k) for k in _split_keys(key)]))

    def encrypt(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` into an ASCII token."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a token made by :meth:`encrypt`; ValueError on a wrong key or tampering."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise ValueError("cannot decrypt secret: wrong LBAAS_SECRET_KEY or corrupted data") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the first (current) key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise ValueError("cannot decrypt secret: wrong LBAAS_SECRET_KEY or corrupted data") from None


def _split_keys(key: bytes | str) -> list[bytes]:
    """Split and validate one or more comma-separated Fernet keys; ValueError if invalid."""
    text = key.decode("ascii", "replace") if isinstance(key, bytes) else key
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError("secret key is empty")
    for part in parts:
        try:
            Fernet(part.encode("ascii"))
        except (ValueError, binascii.Error, UnicodeError):
            raise ValueError(
                "invalid secret key: expected a Fernet key (32 url-safe base64-encoded bytes), "
                'generate one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"'
            ) from None
    return [p.encode("ascii") for p in parts]


def load_or_create_key(data_dir: Path, env_value: str | None) -> bytes:
    """Return the secret key: ``LBAAS_SECRET_KEY`` if set, else ``<data_dir>/secret.key`` (created once).

    The data directory is made private (0700) and the key file is created 0600.
    """
    if env_value is not None and env_value.strip():
        return b",".join(_split_keys(env_value))
    path = files.ensure_private_dir(Path(data_dir)) / KEY_FILE_NAME
    if not path.exists():
        # The first writer wins; a process that loses the race reads the winner's key.
        files.create_private_file(path, Fernet.generate_key() + b"\n")
    files.tighten_file(path)
    return _read_key_file(path)


def _read_key_file(path: Path, attempts: int = 50) -> bytes:
    """Read and validate the key file, waiting briefly if a racing writer has not finished it."""
    for _ in range(attempts):
        data = path.read_bytes().strip()
        if data:
            break
        time.sleep(0.02)  # only reachable with the O_EXCL fallback, mid-write
    try:
        return b",".join(_split_keys(data))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
