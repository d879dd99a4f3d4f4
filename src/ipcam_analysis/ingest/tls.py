"""TLS for the listeners cameras send to: the settings, and a self-signed certificate made once."""

from __future__ import annotations

import datetime
import logging
import os
import socket
import ssl
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from pydantic import field_validator, model_validator

from ipcam_analysis.errors import UserError
from ipcam_analysis.settings import ConfigPath, StrictModel

log = logging.getLogger(__name__)

TlsMode = Literal["off", "optional", "required"]
TlsVersion = Literal["1.0", "1.1", "1.2", "1.3"]
DEFAULT_MIN_VERSION: TlsVersion = "1.2"
# Below TLS 1.2 the handshake signs with MD5/SHA-1, which OpenSSL 3 refuses at its default
# security level (Debian's is 2): the old versions need level 0, on the camera's side too.
OLD_VERSIONS_CIPHERS = "DEFAULT:@SECLEVEL=0"
SELF_SIGNED_CERTIFICATE = "self-signed-cert.pem"
SELF_SIGNED_KEY = "self-signed-key.pem"
# Long enough that nobody has to renew it on a camera; cameras rarely check dates anyway.
SELF_SIGNED_DAYS = 3650


class TlsConfig(StrictModel):
    """`off`: clear text only; `optional`: TLS when the client asks; `required`: TLS or nothing.
    Without a mode, a configured certificate means `optional`."""

    mode: TlsMode = "off"
    certfile: ConfigPath | None = None  # PEM; may hold the key too
    keyfile: ConfigPath | None = None
    # Opt-in for cameras whose firmware speaks only TLS 1.0 or 1.1 (warned about at start).
    min_version: TlsVersion = DEFAULT_MIN_VERSION

    @field_validator("min_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # YAML reads `min_version: 1.0` as a number.
        return str(value) if isinstance(value, float) else value

    @model_validator(mode="before")
    @classmethod
    def _certificate_means_tls(cls, data: Any) -> Any:
        # A certificate set up is meant to be offered (STARTTLS, AUTH TLS) to the cameras.
        if isinstance(data, dict) and data.get("certfile") and "mode" not in data:
            return {**data, "mode": "optional"}
        return data

    @model_validator(mode="after")
    def _key_needs_certificate(self) -> TlsConfig:
        if self.keyfile is not None and self.certfile is None:
            raise ValueError("keyfile is set but certfile is not")
        return self


class TlsCertificateError(UserError):
    """The certificate cannot be read or made; the message is one line for the user."""


def certificate_files(
    settings: TlsConfig, listener: str, self_signed_dir: Path | None
) -> tuple[Path, Path]:
    """(certificate, key) to serve: the configured ones, or the self-signed pair in
    self_signed_dir (made the first time). Logs the certificate's SHA-256 fingerprint, which
    is what a camera or a person compares when asked to trust it."""
    if settings.certfile is not None:
        certfile, keyfile = settings.certfile, settings.keyfile or settings.certfile
    elif self_signed_dir is not None:
        certfile = self_signed_dir / SELF_SIGNED_CERTIFICATE
        keyfile = self_signed_dir / SELF_SIGNED_KEY
        if not certfile.exists():
            _make_self_signed(certfile, keyfile)
    else:
        raise TlsCertificateError(f"{listener}: TLS needs tls.certfile (and tls.keyfile)")
    log.info(
        "%s TLS certificate %s, SHA-256 fingerprint %s", listener, certfile, fingerprint(certfile)
    )
    return certfile, keyfile


def old_versions_ciphers(settings: TlsConfig, listener: str) -> str | None:
    """The cipher list a listener needs for TLS older than 1.2, warned about in one line;
    None at 1.2 and above (the library's defaults stay)."""
    if settings.min_version >= "1.2":
        return None
    log.warning(
        "%s accepts TLS %s (tls.min_version): its encryption is weak; raise it to 1.2"
        " once no camera needs it",
        listener,
        settings.min_version,
    )
    return OLD_VERSIONS_CIPHERS


def tls_failure(error: BaseException) -> str:
    """A failed TLS exchange in a few words, the reason OpenSSL gives ("unexpected message"),
    whether from Python's ssl (SMTP) or pyOpenSSL (FTP), found among the error's causes."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLError) and cause.reason:
            return cause.reason.replace("_", " ").lower()
        if isinstance(cause, SSL.Error) and cause.args and isinstance(cause.args[0], list):
            reasons = [str(entry[-1]) for entry in cause.args[0] if entry]
            if reasons:
                return reasons[-1]
        cause = cause.__cause__
    return str(error) or type(error).__name__


def fingerprint(certfile: Path) -> str:
    """The SHA-256 fingerprint of the first certificate in a PEM file, as AA:BB:…"""
    try:
        certificate = x509.load_pem_x509_certificate(certfile.read_bytes())
    except (OSError, ValueError) as exc:
        raise TlsCertificateError(f"cannot read the TLS certificate {certfile}: {exc}") from None
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def _make_self_signed(certfile: Path, keyfile: Path) -> None:
    # RSA rather than EC: older camera firmwares' TLS stacks know nothing else.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    hostname = socket.gethostname()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        certfile.parent.mkdir(parents=True, exist_ok=True)
        # The key is readable by the service's user only, from its first byte.
        with os.fdopen(os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(key_pem)
        certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise TlsCertificateError(
            f"cannot write a self-signed TLS certificate to {certfile.parent}: {exc.strerror}"
        ) from None
    log.info("Made a self-signed TLS certificate for %s in %s", hostname, certfile)
