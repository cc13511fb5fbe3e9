"""The TLS context of the FIX listener: server certificate, TLS 1.2 at least,
client certificates verified against a CA when asked to."""

from __future__ import annotations

import ssl

from fix_gateway.config import ConfigError, TlsSettings

_VERIFY = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """ConfigError naming the key when a certificate, key or CA file cannot be loaded."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(settings.cert_file), str(settings.key_file))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"tls.cert_file / tls.key_file: cannot load {settings.cert_file}"
                            f" with {settings.key_file}: {exc}") from None
    context.verify_mode = _VERIFY[settings.verify_client]
    if settings.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(settings.ca_file))
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"tls.ca_file: cannot load {settings.ca_file}: {exc}") from None
    return context


def peer_subject(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str:
    """The client certificate's commonName, for the connect log line ('-' if none)."""
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    subject = cert.get("subject", ()) if cert else ()
    for rdn in subject:  # ((("countryName", "GB"),), (("commonName", "x"),), ...)
        for pair in rdn:
            if isinstance(pair, tuple) and pair[0] == "commonName":
                return str(pair[1])
    return "-"
