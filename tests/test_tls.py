"""TLS on the FIX listener, with real TLS clients over loopback.

A throwaway CA, a server certificate for localhost/127.0.0.1 and client
certificates are made per test module with `cryptography`; a second,
untrusted CA signs a rogue client certificate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fix_gateway.config import ConfigError, GatewaySettings, load_settings
from fix_gateway.server import Gateway
from fix_gateway.tls import server_context
from tests.fix_peer import TcpPeer
from tests.gateway_process import REPO, GatewayProcess
from tests.venue import Client, venue_settings

# --- a throwaway PKI ---------------------------------------------------------------------


class Issued(NamedTuple):
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(directory: Path, name: str, common_name: str, issuer: tuple[Any, Any] | None,
           ca: bool = False, server: bool = False) -> tuple[Issued, Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_cert.subject if issuer_cert else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if issuer_cert is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    paths = Issued(directory / f"{name}.pem", directory / f"{name}.key")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return paths, cert, key


class Pki(NamedTuple):
    ca: Issued
    server: Issued
    client: Issued
    rogue_client: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca, ca_cert, ca_key = _issue(d, "ca", "fixgw test CA", None, ca=True)
    server, _, _ = _issue(d, "server", "localhost", (ca_cert, ca_key), server=True)
    client, _, _ = _issue(d, "client", "CLIENT1", (ca_cert, ca_key))
    _, rogue_cert, rogue_key = _issue(d, "rogue-ca", "rogue CA", None, ca=True)
    rogue_client, _, _ = _issue(d, "rogue-client", "CLIENT1", (rogue_cert, rogue_key))
    return Pki(ca, server, client, rogue_client)


def client_context(pki: Pki, cert: Issued | None = None,
                   maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    if cert is not None:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    if maximum is not None:
        context.maximum_version = maximum
    return context


def tls_section(pki: Pki, verify: str = "required") -> dict[str, Any]:
    return {"enabled": True, "port": 0, "cert_file": str(pki.server.cert),
            "key_file": str(pki.server.key), "ca_file": str(pki.ca.cert),
            "verify_client": verify}


@pytest.fixture
def gateway_settings(tmp_path: Path, pki: Pki) -> GatewaySettings:
    return venue_settings(tmp_path, [{"TargetCompID": "CLIENT1"}, {"TargetCompID": "CLIENT2"}],
                          tls=tls_section(pki))


@pytest.fixture
def gateway(gateway: Gateway) -> Gateway:
    """The shared in-process gateway (conftest.py), listening for TLS on a port of its own."""
    assert gateway.tls_port is not None and gateway.tls_port != gateway.port
    return gateway


# --- round trips ---------------------------------------------------------------------------


async def test_logon_and_order_round_trip_over_tls(gateway: Gateway, pki: Pki) -> None:
    assert gateway.tls_port is not None
    client = await Client.logged_on(gateway.tls_port, "CLIENT1",
                                    tls=client_context(pki, pki.client))
    tls = client.peer.writer.get_extra_info("ssl_object")
    assert tls is not None and tls.version() in ("TLSv1.2", "TLSv1.3")
    await client.order("T1", "buy", 10, "100.00")
    er = await client.next("8")
    assert (er[11], er[150], er[39], er[56]) == ("T1", "0", "0", "CLIENT1")
    await client.alive()
    await client.close()


async def test_tls_1_2_is_accepted(gateway: Gateway, pki: Pki) -> None:
    assert gateway.tls_port is not None
    context = client_context(pki, pki.client, maximum=ssl.TLSVersion.TLSv1_2)
    client = await Client.logged_on(gateway.tls_port, "CLIENT1", tls=context)
    assert client.peer.writer.get_extra_info("ssl_object").version() == "TLSv1.2"
    await client.alive()
    await client.close()


@pytest.mark.unit
def test_the_listener_never_offers_less_than_tls_1_2(tmp_path: Path, pki: Pki) -> None:
    settings = venue_settings(tmp_path, [{"TargetCompID": "C"}], tls=tls_section(pki))
    context = server_context(settings.tls)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED


async def _refused_at_tls(port: int, context: ssl.SSLContext) -> None:
    """The handshake fails (TLS 1.2) or the first read does (1.3): never a Logon answer."""
    with pytest.raises((ssl.SSLError, ConnectionResetError, EOFError, BrokenPipeError)):
        peer = await TcpPeer.connect(port, tls=context, sender="CLIENT1")
        try:
            await peer.write(peer.logon(30))
            await peer.receive(5.0)
        finally:
            await peer.close()


async def test_client_without_a_valid_certificate_is_refused(gateway: Gateway, pki: Pki) -> None:
    assert gateway.tls_port is not None
    await _refused_at_tls(gateway.tls_port, client_context(pki))  # no certificate
    await _refused_at_tls(gateway.tls_port, client_context(pki, pki.rogue_client))
    assert not gateway._by_name["FIXGW-CLIENT1"].connected
    # A client with a good certificate is still served.
    client = await Client.logged_on(gateway.tls_port, "CLIENT1",
                                    tls=client_context(pki, pki.client))
    await client.alive()
    await client.close()


async def test_optional_verification_accepts_clients_without_certificates(
    tmp_path: Path, pki: Pki
) -> None:
    gw = Gateway(venue_settings(tmp_path, [{"TargetCompID": "CLIENT1"}],
                                tls=tls_section(pki, verify="optional")))
    await gw.start()
    try:
        assert gw.tls_port is not None
        client = await Client.logged_on(gw.tls_port, "CLIENT1", tls=client_context(pki))
        await client.alive()
        await client.close()
        # A certificate that is presented must still be valid.
        await _refused_at_tls(gw.tls_port, client_context(pki, pki.rogue_client))
    finally:
        await gw.stop(drain_timeout=0.5)


async def test_plain_and_tls_clients_trade_side_by_side(gateway: Gateway, pki: Pki) -> None:
    assert gateway.tls_port is not None
    secure = await Client.logged_on(gateway.tls_port, "CLIENT1",
                                    tls=client_context(pki, pki.client))
    plain = await Client.logged_on(gateway.port, "CLIENT2")
    await secure.order("B1", "buy", 10, "100.00")
    assert (await secure.next("8"))[150] == "0"
    await plain.order("S1", "sell", 10, "100.00")
    assert [(await plain.next("8"))[150] for _ in range(2)] == ["0", "F"]
    fill = await secure.next("8")
    assert (fill[11], fill[150], fill[39], fill[32]) == ("B1", "F", "2", "10")
    await secure.alive()
    await plain.alive()
    # A plain client on the TLS port, or a TLS client on the plain port, gets nowhere.
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError, asyncio.TimeoutError)):
        await TcpPeer.connect(gateway.port, tls=client_context(pki, pki.client))
    stray = await TcpPeer.connect(gateway.tls_port, sender="CLIENT2")
    await stray.write(stray.logon(30))
    assert await stray.closed_by_peer()
    await stray.close()
    await secure.close()
    await plain.close()


# --- configuration --------------------------------------------------------------------------


def _error(tmp_path: Path, tls: str) -> str:
    path = tmp_path / "gw.toml"
    path.write_text(f"[tls]\n{tls}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


@pytest.mark.unit
def test_tls_config_errors_name_the_key(tmp_path: Path, pki: Pki) -> None:
    assert "tls.cert_file" in _error(tmp_path, f'enabled = true\ncert_file = "{tmp_path}/no.pem"'
                                     f'\nkey_file = "{pki.server.key}"')
    assert "cert_file and key_file are required" in _error(tmp_path, "enabled = true")
    assert "ca_file is required for verify_client = 'required'" in _error(
        tmp_path, f'enabled = true\ncert_file = "{pki.server.cert}"\n'
                  f'key_file = "{pki.server.key}"\nverify_client = "required"')
    assert "tls.verify_client" in _error(tmp_path, 'verify_client = "sometimes"')


async def test_a_key_that_does_not_match_is_a_config_error(tmp_path: Path, pki: Pki) -> None:
    tls = {**tls_section(pki), "key_file": str(pki.client.key)}
    gw = Gateway(venue_settings(tmp_path, [{"TargetCompID": "C"}], tls=tls))
    with pytest.raises(ConfigError, match=r"tls\.cert_file / tls\.key_file"):
        await gw.start()
    await gw.stop(drain_timeout=0)


def _write_config(tmp_path: Path, pki: Pki, key_file: Path) -> Path:
    config = tmp_path / "gw.toml"
    config.write_text(f"""
[listen]
port = 0
[store]
data_dir = "{tmp_path / 'data'}"
fsync = "none"
[tls]
enabled = true
port = 0
cert_file = "{pki.server.cert}"
key_file = "{key_file}"
ca_file = "{pki.ca.cert}"
verify_client = "required"
[[sessions]]
SenderCompID = "FIXGW"
TargetCompID = "CLIENT1"
""")
    return config


@pytest.mark.process
async def test_fixgw_serve_prints_both_listeners(tmp_path: Path, pki: Pki) -> None:
    gw = GatewayProcess(_write_config(tmp_path, pki, pki.server.key))
    try:
        assert gw.proc.stdout is not None
        line = gw.proc.stdout.readline()
        assert "listening (TLS) on 127.0.0.1:" in line, line
        tls_port = int(line.rsplit(":", 1)[1])
        client = await Client.logged_on(tls_port, "CLIENT1", tls=client_context(pki, pki.client))
        await client.alive()
        await client.close()
    finally:
        assert gw.stop() == 0


@pytest.mark.process
def test_fixgw_serve_with_a_bad_key_exits_2_naming_the_key(tmp_path: Path, pki: Pki) -> None:
    config = _write_config(tmp_path, pki, pki.client.key)
    done = subprocess.run([sys.executable, "-m", "fix_gateway.cli", "serve", "--config",
                           str(config)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "tls.cert_file / tls.key_file" in done.stderr and "listening" not in done.stdout
