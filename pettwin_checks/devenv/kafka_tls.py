"""The TLS material of the test broker's SSL and SASL_SSL listeners: a CA, the broker's certificate and a client
certificate for mutual TLS, as PEM files."""

from __future__ import annotations

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .kafka_runtime import LOOPBACK


def write_tls_material(tls_dir: str) -> None:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=3650))
    ca_key = _new_key()
    ca_cert = (
        _certificate(_name("pettwin-checks test CA"), _name("pettwin-checks test CA"), ca_key, valid)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key, server_cert = _leaf(
        ca_key,
        ca_cert,
        "localhost",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))],
        valid,
    )
    client_key, client_cert = _leaf(
        ca_key, ca_cert, "pettwin-checks-client", ExtendedKeyUsageOID.CLIENT_AUTH, [], valid
    )
    os.makedirs(tls_dir, exist_ok=True)
    files = {
        "ca.pem": _pem_cert(ca_cert),
        # Kafka's file-based PEM key store: the private key followed by the certificate chain.
        "server-keystore.pem": _pem_key(server_key) + _pem_cert(server_cert) + _pem_cert(ca_cert),
        "client.pem": _pem_cert(client_cert),
        "client.key": _pem_key(client_key),
    }
    for filename, content in files.items():
        path = os.path.join(tls_dir, filename)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)


def _new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pettwin-checks devenv"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate(subject: x509.Name, issuer: x509.Name, key, valid: tuple) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
    )


def _leaf(ca_key, ca_cert: x509.Certificate, common_name: str, usage, alt_names: list, valid: tuple):
    """A key and its certificate for `usage`, signed by the CA."""
    key = _new_key()
    builder = (
        _certificate(_name(common_name), ca_cert.subject, key, valid)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key) -> bytes:
    # Unencrypted PKCS#8: the form both Kafka's PEM key store and librdkafka read without a password.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
