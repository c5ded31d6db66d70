"""The development certificate of the front door: self-signed, for this machine only.

``make run`` and the tests serve HTTPS with it (:func:`ensure_certificate`); clients trust it
by being given it as their CA. Never used in a deployment, never committed: it lives under
the rendered nginx directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERTIFICATE_LIFETIME = timedelta(days=365)
CERTIFICATE_RENEWAL = timedelta(days=30)


@dataclass(frozen=True)
class Certificate:
    """A development certificate and its private key, as PEM files."""

    certificate: Path
    key: Path


def ensure_certificate(directory: Path) -> Certificate:
    """A self-signed certificate for ``localhost`` and ``127.0.0.1`` in ``directory/tls``.

    Made once and reused until 30 days before it expires. For development and tests only:
    clients trust it by being given it as their CA. The key file is created with mode 0600.
    """
    tls = directory / "tls"
    files = Certificate(tls / "certificate.pem", tls / "key.pem")
    if files.key.exists() and _still_valid(files.certificate):
        return files
    tls.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    files.key.unlink(missing_ok=True)
    descriptor = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as output:
        output.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    certificate = _self_signed(key)
    files.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return files


def _still_valid(path: Path) -> bool:
    if not path.exists():
        return False
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    return certificate.not_valid_after_utc - datetime.now(UTC) > CERTIFICATE_RENEWAL


def _self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Flotilla development")])
    now = datetime.now(UTC)
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CERTIFICATE_LIFETIME)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
