"""Self-signed certificates for tests of TLS clients against loopback servers (HTTPS, SMTP
STARTTLS): each certificate is its own CA, valid around a pinned date."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PINNED = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
LOOPBACK = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))


def self_signed(directory: Path, name: str, san: x509.GeneralName = LOOPBACK) -> tuple[Path, Path]:
    """A certificate for `san` (its own CA, valid from a day before PINNED for ten years) and
    its key, as PEM files `<name>.crt` and `<name>.key` in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(PINNED - dt.timedelta(days=1))
        .not_valid_after(PINNED + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file
