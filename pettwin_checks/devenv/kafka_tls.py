"""The TLS material of the test broker's SSL and SASL_SSL listeners: a CA, the broker's certificate and a client
certificate for mutual TLS, as PEM files."""

from __future__ import annotations

import datetime
import ipaddress
import os

from .kafka_runtime import LOOPBACK


def write_tls_material(tls_dir: str) -> None:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=3650)

    def new_key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def name(common_name):
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pettwin-checks devenv"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )

    def key_usage(*, cert_sign):
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

    ca_key = new_key()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("pettwin-checks test CA"))
        .issuer_name(name("pettwin-checks test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common_name, usage, alt_names):
        key = new_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    server_key, server_cert = leaf(
        "localhost",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))],
    )
    client_key, client_cert = leaf("pettwin-checks-client", ExtendedKeyUsageOID.CLIENT_AUTH, [])

    def pem_cert(cert):
        return cert.public_bytes(serialization.Encoding.PEM)

    def pem_key(key):
        # Unencrypted PKCS#8: the form both Kafka's PEM key store and librdkafka read without a password.
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    os.makedirs(tls_dir, exist_ok=True)
    files = {
        "ca.pem": pem_cert(ca_cert),
        # Kafka's file-based PEM key store: the private key followed by the certificate chain.
        "server-keystore.pem": pem_key(server_key) + pem_cert(server_cert) + pem_cert(ca_cert),
        "client.pem": pem_cert(client_cert),
        "client.key": pem_key(client_key),
    }
    for filename, content in files.items():
        path = os.path.join(tls_dir, filename)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
