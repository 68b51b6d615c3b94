"""Tests for lbaas.certs: PEM/PKCS#12 parsing, SecretBox and the key file."""

from __future__ import annotations

import base64
import datetime as dt
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from lbaas import files
from lbaas.certs import CertBundle, SecretBox, load_or_create_key, parse_pem_bundle, parse_pkcs12
from lbaas.errors import ValidationFailed

NOW = dt.datetime.now(dt.UTC)
EC_PARAMS_P256 = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"


# --------------------------------------------------------------------------- helpers


def _name(cn: str | None) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])


def make_cert(
    key,
    *,
    cn: str | None = "example.com",
    sans: tuple[str, ...] = ("example.com", "www.example.com"),
    issuer_key=None,
    issuer_cn: str | None = None,
    days: tuple[int, int] = (-1, 365),
    ca: bool = False,
) -> x509.Certificate:
    """A certificate for ``key``, self-signed unless ``issuer_key`` is given."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer_cn if issuer_key is not None else cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=days[0]))
        .not_valid_after(NOW + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    signer = issuer_key if issuer_key is not None else key
    algo = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algo)


def cert_pem(*cs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in cs)


def key_pem(key, fmt=serialization.PrivateFormat.PKCS8, enc=None) -> str:
    enc = enc or serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc).decode()


def pem_certs(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def invalid(exc: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, list[str]]:
    assert exc.value.status_code == 400
    return exc.value.invalid_fields


@dataclass(frozen=True)
class Pki:
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    other_ec_key: ec.EllipticCurvePrivateKey
    root_key: ec.EllipticCurvePrivateKey
    inter_key: ec.EllipticCurvePrivateKey
    rsa_cert: x509.Certificate
    ec_cert: x509.Certificate
    root: x509.Certificate
    inter: x509.Certificate
    leaf: x509.Certificate  # ec_key, signed by inter


@pytest.fixture(scope="module")
def pki() -> Pki:
    """Keys and certificates shared by the module: one RSA 2048 keygen in total."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key, other, root_key, inter_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    root = make_cert(root_key, cn="Test Root", sans=(), ca=True, days=(-10, 3650))
    inter = make_cert(
        inter_key, cn="Test Inter", sans=(), issuer_key=root_key, issuer_cn="Test Root", ca=True
    )
    leaf = make_cert(
        ec_key,
        cn="leaf.example.com",
        sans=("leaf.example.com",),
        issuer_key=inter_key,
        issuer_cn="Test Inter",
    )
    return Pki(
        rsa_key=rsa_key,
        ec_key=ec_key,
        other_ec_key=other,
        root_key=root_key,
        inter_key=inter_key,
        rsa_cert=make_cert(rsa_key),
        ec_cert=make_cert(ec_key, cn="ec.example.com", sans=("ec.example.com",)),
        root=root,
        inter=inter,
        leaf=leaf,
    )


# --------------------------------------------------------------------------- PEM: success


def test_rsa_self_signed(pki: Pki) -> None:
    b = parse_pem_bundle(cert_pem(pki.rsa_cert), key_pem(pki.rsa_key), "")
    assert isinstance(b, CertBundle)
    assert (b.algorithm, b.bit_length) == ("RSA", 2048)
    assert b.subject_cn == "example.com"
    assert b.sans == ("example.com", "www.example.com")
    assert b.not_after == pki.rsa_cert.not_valid_after_utc
    assert b.not_after.tzinfo is not None
    assert pem_certs(b.pem) == [pki.rsa_cert]
    # The key comes last and is loadable from the same text (what HAProxy does).
    assert b.pem.index("BEGIN CERTIFICATE") < b.pem.index("BEGIN PRIVATE KEY")
    assert b.pem.endswith("-----END PRIVATE KEY-----\n")
    loaded = serialization.load_pem_private_key(b.pem.encode(), None)
    assert loaded.private_numbers() == pki.rsa_key.private_numbers()


def test_bundle_is_frozen(pki: Pki) -> None:
    b = parse_pem_bundle(cert_pem(pki.ec_cert), key_pem(pki.ec_key), None)
    with pytest.raises(FrozenInstanceError):
        b.pem = ""  # type: ignore[misc]


def test_ec_p256(pki: Pki) -> None:
    b = parse_pem_bundle(cert_pem(pki.ec_cert), key_pem(pki.ec_key), None)
    assert (b.algorithm, b.bit_length) == ("EC", 256)
    assert b.subject_cn == "ec.example.com"
    assert b.sans == ("ec.example.com",)


def test_ed25519() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    b = parse_pem_bundle(cert_pem(make_cert(key)), key_pem(key), "")
    assert (b.algorithm, b.bit_length) == ("ED25519", 256)


@pytest.mark.parametrize("chain", [None, "", "  \n\t"])
def test_empty_chain(pki: Pki, chain: str | None) -> None:
    b = parse_pem_bundle(cert_pem(pki.ec_cert), key_pem(pki.ec_key), chain)
    assert pem_certs(b.pem) == [pki.ec_cert]


def test_chain_with_intermediate(pki: Pki) -> None:
    b = parse_pem_bundle(cert_pem(pki.leaf), key_pem(pki.ec_key), cert_pem(pki.inter, pki.root))
    assert pem_certs(b.pem) == [pki.leaf, pki.inter, pki.root]
    assert b.subject_cn == "leaf.example.com"
    assert b.pem.index("END CERTIFICATE") < b.pem.index("BEGIN PRIVATE KEY")


def test_extra_certs_in_certificate_field_become_chain(pki: Pki) -> None:
    b = parse_pem_bundle(cert_pem(pki.leaf, pki.inter), key_pem(pki.ec_key), cert_pem(pki.root))
    assert pem_certs(b.pem) == [pki.leaf, pki.inter, pki.root]


def test_leaf_repeated_in_chain_is_dropped(pki: Pki) -> None:
    b = parse_pem_bundle(cert_pem(pki.leaf), key_pem(pki.ec_key), cert_pem(pki.leaf, pki.inter))
    assert pem_certs(b.pem) == [pki.leaf, pki.inter]


def test_expired_intermediate_is_accepted(pki: Pki) -> None:
    old = make_cert(
        pki.inter_key,
        cn="Old Inter",
        sans=(),
        issuer_key=pki.root_key,
        issuer_cn="Test Root",
        ca=True,
        days=(-30, -1),
    )
    b = parse_pem_bundle(cert_pem(pki.leaf), key_pem(pki.ec_key), cert_pem(old))
    assert pem_certs(b.pem) == [pki.leaf, old]


def test_not_yet_valid_is_accepted(pki: Pki) -> None:
    future = make_cert(pki.ec_key, days=(1, 30))
    assert parse_pem_bundle(cert_pem(future), key_pem(pki.ec_key), "").not_after > NOW


def test_traditional_key_formats_crlf_and_surrounding_text(pki: Pki) -> None:
    rsa_trad = key_pem(pki.rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)
    assert "BEGIN RSA PRIVATE KEY" in rsa_trad
    cert = "Bag Attributes\n    friendlyName: x\nsubject=CN = example.com\n" + cert_pem(pki.rsa_cert)
    b = parse_pem_bundle(cert.replace("\n", "\r\n"), rsa_trad.replace("\n", "\r\n"), "")
    assert b.algorithm == "RSA"
    assert "\r" not in b.pem
    ec_trad = EC_PARAMS_P256 + key_pem(pki.ec_key, serialization.PrivateFormat.TraditionalOpenSSL)
    assert parse_pem_bundle(cert_pem(pki.ec_cert), ec_trad, None).algorithm == "EC"


def test_no_cn_no_sans(pki: Pki) -> None:
    cert = make_cert(pki.ec_key, cn=None, sans=())
    b = parse_pem_bundle(cert_pem(cert), key_pem(pki.ec_key), "")
    assert (b.subject_cn, b.sans) == (None, ())


# --------------------------------------------------------------------------- PEM: failures


def test_expired_certificate_rejected(pki: Pki) -> None:
    expired = make_cert(pki.ec_key, days=(-30, -1))
    with pytest.raises(ValidationFailed) as exc:
        parse_pem_bundle(cert_pem(expired), key_pem(pki.ec_key), "")
    fields = invalid(exc)
    assert list(fields) == ["payload.certificate"]
    assert "expired" in fields["payload.certificate"][0]


@pytest.mark.parametrize("which", ["ec", "rsa"])
def test_mismatching_key_rejected(pki: Pki, which: str) -> None:
    cert = pki.ec_cert if which == "ec" else pki.rsa_cert
    with pytest.raises(ValidationFailed) as exc:
        parse_pem_bundle(cert_pem(cert), key_pem(pki.other_ec_key), "")
    assert invalid(exc) == {"payload.private_key": ["does not match the certificate"]}
    assert "payload.private_key" in exc.value.message


def test_leaf_must_come_first(pki: Pki) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_pem_bundle(cert_pem(pki.inter, pki.leaf), key_pem(pki.ec_key), "")
    assert list(invalid(exc)) == ["payload.private_key"]


def _corrupt(pem: str) -> str:
    lines = pem.splitlines(keepends=True)
    lines[2] = "!!!!notbase64!!!!\n"
    return "".join(lines)


@pytest.mark.parametrize(
    ("field", "mutate"),
    [
        ("payload.certificate", lambda p: {"certificate": "garbage"}),
        ("payload.certificate", lambda p: {"certificate": ""}),
        ("payload.certificate", lambda p: {"certificate": key_pem(p.ec_key)}),
        ("payload.certificate", lambda p: {"certificate": _corrupt(cert_pem(p.ec_cert))}),
        ("payload.certificate", lambda p: {"certificate": cert_pem(p.ec_cert) + key_pem(p.ec_key)}),
        ("payload.certificate", lambda p: {"certificate": None}),
        ("payload.certificate", lambda p: {"certificate": "x" * 70000}),
        ("payload.private_key", lambda p: {"private_key": "garbage"}),
        ("payload.private_key", lambda p: {"private_key": ""}),
        ("payload.private_key", lambda p: {"private_key": cert_pem(p.ec_cert)}),
        ("payload.private_key", lambda p: {"private_key": key_pem(p.ec_key) * 2}),
        ("payload.private_key", lambda p: {"private_key": _corrupt(key_pem(p.rsa_key))}),
        ("payload.private_key", lambda p: {"private_key": key_pem(p.ec_key) + cert_pem(p.ec_cert)}),
        ("payload.private_key", lambda p: {"private_key": 42}),
        ("payload.certificate_chain", lambda p: {"certificate_chain": "garbage"}),
        ("payload.certificate_chain", lambda p: {"certificate_chain": key_pem(p.ec_key)}),
        ("payload.certificate_chain", lambda p: {"certificate_chain": _corrupt(cert_pem(p.inter))}),
        ("payload.certificate_chain", lambda p: {"certificate_chain": cert_pem(p.inter) + key_pem(p.ec_key)}),
        ("payload.certificate_chain", lambda p: {"certificate_chain": ["x"]}),
    ],
)
def test_garbage_reported_on_exact_field(pki: Pki, field: str, mutate) -> None:
    args = {"certificate": cert_pem(pki.ec_cert), "private_key": key_pem(pki.ec_key), "certificate_chain": ""}
    args.update(mutate(pki))
    with pytest.raises(ValidationFailed) as exc:
        parse_pem_bundle(**args)
    assert list(invalid(exc)) == [field]


def test_encrypted_key_rejected(pki: Pki) -> None:
    enc = serialization.BestAvailableEncryption(b"pw")
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        with pytest.raises(ValidationFailed) as exc:
            parse_pem_bundle(cert_pem(pki.ec_cert), key_pem(pki.ec_key, fmt, enc), "")
        assert "encrypted" in invalid(exc)["payload.private_key"][0]


def test_small_rsa_key_rejected() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValidationFailed) as exc:
        parse_pem_bundle(cert_pem(make_cert(key)), key_pem(key), "")
    assert "too small" in invalid(exc)["payload.private_key"][0]


def test_unsupported_key_type_rejected(pki: Pki) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_pem_bundle(cert_pem(pki.ec_cert), key_pem(x25519.X25519PrivateKey.generate()), "")
    assert "unsupported key type" in invalid(exc)["payload.private_key"][0]


# --------------------------------------------------------------------------- PKCS#12


def _p12(key, cert, cas=None, password: bytes | None = None) -> str:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return base64.b64encode(pkcs12.serialize_key_and_certificates(b"lb", key, cert, cas, enc)).decode()


def test_pkcs12_round_trip_without_passphrase(pki: Pki) -> None:
    b = parse_pkcs12(_p12(pki.ec_key, pki.leaf, [pki.inter]))
    assert b == parse_pem_bundle(cert_pem(pki.leaf), key_pem(pki.ec_key), cert_pem(pki.inter))
    assert pem_certs(b.pem) == [pki.leaf, pki.inter]


def test_pkcs12_round_trip_with_passphrase_and_wrapped_base64(pki: Pki) -> None:
    data = _p12(pki.rsa_key, pki.rsa_cert, password=b"s3cret")
    wrapped = "\n".join(data[i : i + 64] for i in range(0, len(data), 64))
    b = parse_pkcs12(wrapped, "s3cret")
    assert (b.algorithm, b.bit_length, b.subject_cn) == ("RSA", 2048, "example.com")
    assert pem_certs(b.pem) == [pki.rsa_cert]


@pytest.mark.parametrize("passphrase", [None, "", "wrong"])
def test_pkcs12_wrong_or_missing_passphrase(pki: Pki, passphrase: str | None) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_pkcs12(_p12(pki.ec_key, pki.ec_cert, password=b"pw"), passphrase)
    assert list(invalid(exc)) == ["payload"]


def test_pkcs12_failures(pki: Pki) -> None:
    cases = [
        "not base64 !!!",
        base64.b64encode(b"garbage").decode(),
        _p12(pki.ec_key, None),  # no certificate
        base64.b64encode(
            pkcs12.serialize_key_and_certificates(b"x", None, None, [pki.inter], serialization.NoEncryption())
        ).decode(),
        _p12(pki.ec_key, make_cert(pki.ec_key, days=(-30, -1))),  # expired
    ]
    for payload in cases:
        with pytest.raises(ValidationFailed) as exc:
            parse_pkcs12(payload)
        assert list(invalid(exc)) == ["payload"], payload[:30]


# --------------------------------------------------------------------------- SecretBox


def test_secretbox_round_trip() -> None:
    key = Fernet.generate_key()
    box = SecretBox.from_key(key)
    plaintext = "-----BEGIN PRIVATE KEY-----\nsécret ✓\n-----END PRIVATE KEY-----\n"
    token = box.encrypt(plaintext)
    assert isinstance(token, str) and token.isascii()
    assert "PRIVATE KEY" not in token and "sécret" not in token
    assert box.encrypt(plaintext) != token  # random IV
    assert box.decrypt(token) == plaintext
    assert SecretBox.from_key(key.decode()).decrypt(token) == plaintext


def test_secretbox_wrong_key_and_tampering() -> None:
    token = SecretBox.from_key(Fernet.generate_key()).encrypt("x")
    with pytest.raises(ValueError, match="cannot decrypt"):
        SecretBox.from_key(Fernet.generate_key()).decrypt(token)
    with pytest.raises(ValueError, match="cannot decrypt"):
        SecretBox.from_key(Fernet.generate_key()).decrypt("not-a-token é")


@pytest.mark.parametrize("bad", ["", "short", b"x" * 44, "a,b"])
def test_secretbox_invalid_key(bad) -> None:
    with pytest.raises(ValueError):
        SecretBox.from_key(bad)


def test_secretbox_key_rotation() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = SecretBox.from_key(old).encrypt("payload")
    both = SecretBox.from_key(new + b"," + old)
    assert both.decrypt(token) == "payload"
    rotated = both.rotate(token)
    assert SecretBox.from_key(new).decrypt(rotated) == "payload"


# --------------------------------------------------------------------------- key file


def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data" / "nested"
    key = load_or_create_key(data_dir, None)
    path = data_dir / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Fernet(key)  # valid
    assert load_or_create_key(data_dir, None) == key
    assert load_or_create_key(data_dir, "") == key  # empty env var means unset
    assert [p.name for p in data_dir.iterdir()] == ["secret.key"]  # no temp files left
    box = SecretBox.from_key(key)
    assert SecretBox.from_key(load_or_create_key(data_dir, None)).decrypt(box.encrypt("v")) == "v"


def test_env_key_takes_precedence(tmp_path: Path) -> None:
    env = Fernet.generate_key().decode()
    assert load_or_create_key(tmp_path, env) == env.encode()
    assert not (tmp_path / "secret.key").exists()  # nothing written when the env var is set
    file_key = load_or_create_key(tmp_path, None)
    assert file_key != env.encode()
    assert load_or_create_key(tmp_path, f" {env}\n") == env.encode()


def test_invalid_env_key_rejected_without_echo(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Fernet key") as exc:
        load_or_create_key(tmp_path, "hunter2-not-a-key")
    assert "hunter2" not in str(exc.value)


def test_corrupt_key_file_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("garbage\n")
    with pytest.raises(ValueError, match=r"secret\.key"):
        load_or_create_key(tmp_path, None)
    assert (tmp_path / "secret.key").read_text() == "garbage\n"


def test_create_never_replaces_existing_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    first = load_or_create_key(tmp_path, None)
    assert not files.create_private_file(path, b"late\n")  # a racing process that lost
    assert load_or_create_key(tmp_path, None) == first
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_concurrent_creation_yields_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(lambda _: load_or_create_key(tmp_path, None), range(16)))
    assert len(keys) == 1


def test_fallback_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(*_a, **_k):
        raise PermissionError("no hard links here")

    monkeypatch.setattr(os, "link", no_link)
    key = load_or_create_key(tmp_path, None)
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    assert load_or_create_key(tmp_path, None) == key
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_many_unterminated_blocks_are_cheap(pki: Pki) -> None:
    text = ("-----BEGIN CERTIFICATE-----\n" * 2400)[:65536]
    start = time.perf_counter()
    with pytest.raises(ValidationFailed):
        parse_pem_bundle(text, key_pem(pki.ec_key), "")
    assert time.perf_counter() - start < 0.2
