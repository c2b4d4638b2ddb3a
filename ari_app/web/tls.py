"""TLS for the app's own doors: a server certificate given by path, or one made on first run
by a small local certificate authority kept in the data folder, and the server context
(TLS 1.2 or newer, forward-secret AEAD ciphers only) built from either.

The local CA is what a client is given to trust: the server certificate under it is
reissued by itself (new names, close to expiry) without the client changing anything.
Nothing here knows which door it serves; `door_files` takes the door's settings.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ivr.errors import ConfigError

log = logging.getLogger(__name__)

CA_DAYS = 3650
# Apple's clients refuse server certificates valid for longer, even under a private CA.
SERVER_DAYS = 825
RENEW_BEFORE = dt.timedelta(days=30)
# Mozilla's "intermediate" TLS 1.2 suites: ECDHE/DHE key exchange, AES-GCM or ChaCha20 only.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL"
WILDCARDS = ("", "0.0.0.0", "::")
# The one local CA the operators' PCs trust, for both doors they use: the console on HTTPS
# and the browser phones' secure WebSocket (Asterisk's). A PC installs operators-ca.pem once.
OPERATORS_CA = "operators"


@dataclass(frozen=True)
class TlsFiles:
    """A door's certificate and key; `ca` is the local CA certificate a client is given to
    trust, or None for a certificate the operator brought."""

    cert: Path
    key: Path
    ca: Path | None = None


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A server context for `files`: TLS 1.2 or newer. Raises ConfigError naming the file at fault."""
    for what, path in (("certificate", files.cert), ("private key", files.key)):
        _readable(path, what, "the path in the settings")
    try:
        x509.load_pem_x509_certificates(files.cert.read_bytes())
    except ValueError:
        raise ConfigError(f"file {files.cert}: not a PEM certificate (-----BEGIN CERTIFICATE-----); give the certificate, "
                          "followed by its intermediate certificates, in PEM form") from None
    try:
        serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"file {files.key}: not an unencrypted PEM private key; give the certificate's key in PEM form "
                          "without a passphrase (openssl pkey -in KEY -out KEY.pem)") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    try:
        context.load_cert_chain(files.cert, files.key)
    except ssl.SSLError as exc:
        raise ConfigError(f"file {files.key}: not the private key of the certificate in {files.cert} ({exc.reason}); "
                          "give the key the certificate was issued for") from None
    return context


def default_hostnames(host: str, given: Sequence[str] = ()) -> list[str]:
    """The names a made certificate is for: `given` when set, else the listening address
    (unless a wildcard), this machine's name, localhost and 127.0.0.1."""
    if given:
        return list(given)
    names = [] if host in WILDCARDS else [host]
    for name in (socket.getfqdn(), "localhost", "127.0.0.1"):
        if name and name not in names:
            names.append(name)
    return names


def door_files(*, cert: str, key: str, folder: Path, name: str, hostnames: Sequence[str], setting: str,
               ca_name: str | None = None) -> TlsFiles:
    """The door's files: the operator's `cert` and `key` when given, else the ones made (or
    kept) under `folder` for `hostnames`. `setting` prefixes the settings' names in errors;
    `ca_name` shares one local CA between doors the same clients use (default: the door's own)."""
    if cert or key:
        if not (cert and key):
            given, missing = (f"{setting}_cert", f"{setting}_key") if cert else (f"{setting}_key", f"{setting}_cert")
            raise ConfigError(f"{given} is set but {missing} is not: give both the certificate and its private key (PEM), "
                              "or neither to use a certificate made on first run")
        files = TlsFiles(Path(cert), Path(key))
        _readable(files.cert, "certificate", f"{setting}_cert")
        _readable(files.key, "private key", f"{setting}_key")
        _warn_if_expiring(files.cert)
        return files
    return local_certificate(folder, name, hostnames, ca_name=ca_name)


def local_certificate(folder: Path, name: str, hostnames: Sequence[str], *, ca_name: str | None = None) -> TlsFiles:
    """`<folder>/<ca_name>-ca.pem` (default `<name>-ca.pem`) and `<name>.pem` with their keys
    (mode 0600), made when missing; the server certificate is reissued under the same CA when
    its names change or it nears expiry."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_name = ca_name or name
    # Two processes may want the same CA at once (Asterisk's set-up and the app's console
    # door share the operators' CA): one makes it, the other waits and takes it.
    with (folder / f"{ca_name}-ca.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _local_certificate(folder, name, hostnames, ca_name)


def _local_certificate(folder: Path, name: str, hostnames: Sequence[str], ca_name: str) -> TlsFiles:
    files = TlsFiles(folder / f"{name}.pem", folder / f"{name}.key", folder / f"{ca_name}-ca.pem")
    ca_key_path = folder / f"{ca_name}-ca.key"
    assert files.ca is not None
    if not (files.ca.exists() and ca_key_path.exists()):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key, f"ivr112 {ca_name} local CA ({os.uname().nodename})")
        _write(ca_key_path, _key_pem(ca_key), private=True)
        _write(files.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
        log.info("made the %s local CA: %s (hand this certificate to the clients)", ca_name, files.ca)
    ca_cert = x509.load_pem_x509_certificate(files.ca.read_bytes())
    reason = _reissue_reason(files, ca_cert, hostnames)
    if reason is None:
        return files
    loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"file {ca_key_path}: not the EC key ivr112 makes; delete {files.ca} and it to make a new CA")
    key = ec.generate_private_key(ec.SECP256R1())
    _write(files.key, _key_pem(key), private=True)
    _write(files.cert, _server_certificate(key, hostnames, ca_cert, loaded).public_bytes(serialization.Encoding.PEM))
    log.info("made the %s door's certificate %s for %s (%s)", name, files.cert, ", ".join(hostnames), reason)
    return files


def _readable(path: Path, what: str, fix: str) -> None:
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise ConfigError(f"file {path}: no such {what}; fix {fix}, or leave both the certificate "
                          "and key settings empty to use a certificate made on first run") from None
    except OSError as exc:
        raise ConfigError(f"file {path}: the {what} cannot be read ({exc.strerror}); "
                          "make it readable by the user that runs ivr112") from None


def _warn_if_expiring(path: Path) -> None:
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        return  # server_context says what is wrong with it
    left = certs[0].not_valid_after_utc - dt.datetime.now(dt.UTC)
    if left < RENEW_BEFORE:
        log.error("the certificate %s %s on %s; clients will refuse it: renew it", path,
                  "expired" if left.total_seconds() < 0 else "expires", certs[0].not_valid_after_utc.date())


def _reissue_reason(files: TlsFiles, ca_cert: x509.Certificate, hostnames: Sequence[str]) -> str | None:
    if not (files.cert.exists() and files.key.exists()):
        return "first run"
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    if cert.issuer != ca_cert.subject:
        return "new CA"
    if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
        return "close to expiry"
    if _names_of(cert) != {_general_name(h) for h in hostnames}:
        return "names changed"
    return None


def _names_of(cert: x509.Certificate) -> set[x509.GeneralName]:
    try:
        return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return set()


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _ca_certificate(key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ivr112"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(key: ec.EllipticCurvePrivateKey, hostnames: Sequence[str], ca_cert: x509.Certificate,
                        ca_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hostnames]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write whole or not at all; a key is never readable by others, not even for a moment."""
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)
