"""Logon credentials: salted password hashes and source-address allow-lists.

A password is stored as `scrypt$<n>$<r>$<p>$<salt>$<hash>` (salt and hash in
unpadded URL-safe base64), made by `fixgw hash-password`. Checking one costs
tens of milliseconds on purpose, so the gateway runs `credentials_ok` on a
worker thread (hashlib.scrypt releases the GIL), never on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
from typing import NamedTuple

from fix_gateway.session.config import SessionConfig

SCHEME = "scrypt"
# scrypt cost: 2**14 x 8 x 1 uses 16 MiB and ~50 ms per check, the floor
# Python's documentation and OWASP recommend.
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
_MAX_N = 2**20

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PasswordHash(NamedTuple):
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    def encode(self) -> str:
        return f"{SCHEME}${self.n}${self.r}${self.p}${_b64(self.salt)}${_b64(self.digest)}"


def hash_password(
    password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P,
    salt: bytes | None = None,
) -> str:
    """The encoded salted hash of `password` (a fresh random salt unless given)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = _scrypt(password.encode("utf-8"), salt, n, r, p, HASH_BYTES)
    return PasswordHash(n, r, p, salt, digest).encode()


def parse_password_hash(encoded: str) -> PasswordHash:
    """Decode `scrypt$n$r$p$salt$hash`; ValueError says what is wrong."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise ValueError("expected scrypt$<n>$<r>$<p>$<salt>$<hash> (see `fixgw hash-password`)")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise ValueError("n, r, p must be integers; salt and hash base64") from None
    if n < 2 or n > _MAX_N or n & (n - 1) or r < 1 or p < 1 or r * p >= 2**30:
        raise ValueError(f"scrypt parameters out of range: n={n} r={r} p={p}")
    if len(salt) < 8 or len(digest) < 16:
        raise ValueError("salt or hash too short")
    return PasswordHash(n, r, p, salt, digest)


def verify_password(password: bytes, encoded: PasswordHash) -> bool:
    """Whether `password` hashes to `encoded`; the comparison is constant-time."""
    digest = _scrypt(password, encoded.salt, encoded.n, encoded.r, encoded.p,
                     len(encoded.digest))
    return hmac.compare_digest(digest, encoded.digest)


def credentials_ok(config: SessionConfig, username: bytes | None, password: bytes | None) -> bool:
    """Username(553) / Password(554) of a Logon against the session's settings.

    Every configured part is checked even when an earlier one failed, so the
    answer takes as long whichever part was wrong.
    """
    ok = True
    if config.username is not None:
        ok = hmac.compare_digest(username or b"", config.username.encode("utf-8"))
    if config.password_hash is not None:
        ok = verify_password(password or b"", parse_password_hash(config.password_hash)) and ok
    elif config.password is not None:
        ok = hmac.compare_digest(password or b"", config.password.encode("utf-8")) and ok
    return ok


def needs_credentials(config: SessionConfig) -> bool:
    return (config.username is not None or config.password is not None
            or config.password_hash is not None)


def parse_networks(entries: list[str]) -> tuple[IpNetwork, ...]:
    """IPs or CIDRs (`10.0.0.5`, `10.1.0.0/16`, `::1`); ValueError names the bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def address_allowed(networks: tuple[IpNetwork, ...], host: str) -> bool:
    """Whether `host` (the peer's IP) is in one of `networks`; empty: everyone."""
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # not an IP peer (e.g. a Unix socket): not on any list
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.5 from a dual-stack listener
    return any(address in network for network in networks)


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=size,
                          maxmem=128 * r * (n + p + 2) + 1024 * 1024)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError("bad base64") from None
