"""Logon authentication, allow-lists, failed-logon lockouts and session isolation.

Unit level: the password hash format, the allow-list matcher, the lockout
tracker with an injected clock, the sans-I/O connection. Socket level: an
in-process gateway on an ephemeral loopback port; clients connect from
127.0.0.1 or 127.0.0.2 (both loopback on Linux) to act as two addresses.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fix_gateway import auth
from fix_gateway.config import ConfigError, GatewaySettings, load_settings
from fix_gateway.server import Gateway
from fix_gateway.session.logon_failures import LogonFailures
from tests.fix_peer import SansIOPeer
from tests.venue import Client, fields, venue_settings

REPO = Path(__file__).resolve().parent.parent
FAST = {"n": 2**10}  # cheap scrypt cost for tests; the default is 2**14
ALICE_HASH = auth.hash_password("correct horse", **FAST)
BOB_HASH = auth.hash_password("battery staple", **FAST)
ALICE = ((553, "alice"), (554, "correct horse"))


# --- password hashes ------------------------------------------------------------------


def test_hash_is_self_describing_salted_and_verifies() -> None:
    encoded = auth.hash_password("s3cret")
    assert encoded.split("$")[:4] == ["scrypt", "16384", "8", "1"]
    parsed = auth.parse_password_hash(encoded)
    assert len(parsed.salt) == 16 and len(parsed.digest) == 32
    assert auth.verify_password(b"s3cret", parsed)
    assert not auth.verify_password(b"s3cret ", parsed)
    assert not auth.verify_password(b"", parsed)
    # A fresh salt each time: the same password never gives the same hash.
    again = auth.hash_password("s3cret")
    assert again != encoded and auth.verify_password(b"s3cret", auth.parse_password_hash(again))


@pytest.mark.parametrize("bad", [
    "s3cret", "pbkdf2$1$2$3$AAAA$BBBB", "scrypt$16384$8$1$salt", "scrypt$abc$8$1$AAAAAAAAAAA$B",
    "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "scrypt$16384$8$1$AA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
])  # fmt: skip
def test_malformed_hashes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        auth.parse_password_hash(bad)


@pytest.mark.process
def test_hash_password_command_reads_stdin_and_prints_a_verifying_hash() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fix_gateway.cli", "hash-password"], input="tr0ub4dor&3\n",
        capture_output=True, text=True, cwd=REPO, timeout=60, check=True,
    ).stdout.strip()
    assert out.startswith("scrypt$16384$8$1$") and "tr0ub4dor" not in out
    assert auth.verify_password(b"tr0ub4dor&3", auth.parse_password_hash(out))
    empty = subprocess.run([sys.executable, "-m", "fix_gateway.cli", "hash-password"],
                           input="\n", capture_output=True, text=True, cwd=REPO, timeout=60)
    assert empty.returncode == 1 and "empty password" in empty.stderr


# --- configuration ----------------------------------------------------------------------


def _config_error(tmp_path: Path, session_keys: str) -> str:
    path = tmp_path / "gw.toml"
    path.write_text(f'[[sessions]]\nSenderCompID = "FIXGW"\nTargetCompID = "C1"\n{session_keys}\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


def test_config_errors_name_the_security_key(tmp_path: Path) -> None:
    text = _config_error(tmp_path, 'PasswordHash = "plaintext"')
    assert "sessions.0.PasswordHash" in text and "scrypt$" in text
    text = _config_error(tmp_path, 'AllowedAddresses = ["10.0.0.300"]')
    assert "sessions.0.AllowedAddresses" in text and "10.0.0.300" in text
    text = _config_error(tmp_path, f'Password = "x"\nPasswordHash = "{ALICE_HASH}"')
    assert "Password or PasswordHash, not both" in text
    text = _config_error(tmp_path, "ThrottleMessages = -1")
    assert "sessions.0.ThrottleMessages" in text
    text = _config_error(tmp_path, 'ThrottleAction = "drop"')
    assert "sessions.0.ThrottleAction" in text
    text = _config_error(tmp_path, "MaxOpenOrders = -5")
    assert "sessions.0.MaxOpenOrders" in text


def test_allowed_addresses_match_ips_and_networks() -> None:
    nets = auth.parse_networks(["10.1.0.0/16", "192.168.5.7", "2001:db8::/32"])
    assert auth.address_allowed(nets, "10.1.255.3")
    assert auth.address_allowed(nets, "192.168.5.7")
    assert auth.address_allowed(nets, "::ffff:10.1.0.9")  # dual-stack form of an IPv4 peer
    assert auth.address_allowed(nets, "2001:db8::1")
    assert not auth.address_allowed(nets, "10.2.0.1")
    assert not auth.address_allowed(nets, "192.168.5.8")
    assert not auth.address_allowed(nets, "not-an-ip")
    assert auth.address_allowed((), "10.2.0.1")  # no list: everyone


# --- failed-logon lockout, injected clock -------------------------------------------------


def test_lockout_after_n_failures_in_window_doubles_and_expires() -> None:
    f = LogonFailures(max_failures=3, window=60, lockout=10, lockout_max=25)
    assert f.failed("10.0.0.1", "S1", 0) == 0 and f.failed("10.0.0.1", "S1", 1) == 0
    assert f.locked_for("10.0.0.1", "S1", 1) == 0
    assert f.failed("10.0.0.1", "S1", 2) == 10  # third within the window: locked 10 s
    assert f.locked_for("10.0.0.1", "S1", 5) == 7
    assert f.locked_for("10.0.0.2", "S1", 5) == 0  # another address is not affected
    assert f.locked_for("10.0.0.1", "S2", 5) == 0  # nor is another session
    assert f.locked_for("10.0.0.1", "S1", 12) == 0  # served its time
    for now in (12, 13, 14):
        lock = f.failed("10.0.0.1", "S1", now)
    assert lock == 20  # second lockout doubles
    for now in (40, 41, 42):
        lock = f.failed("10.0.0.1", "S1", now)
    assert lock == 25  # capped at lockout_max
    f.succeeded("10.0.0.1", "S1")
    assert f.locked_for("10.0.0.1", "S1", 43) == 0
    assert [f.failed("10.0.0.1", "S1", t) for t in (50, 51, 52)] == [0, 0, 10]  # back to start


def test_a_success_on_one_session_keeps_the_failures_against_another() -> None:
    f = LogonFailures(max_failures=3, window=60, lockout=10)
    assert [f.failed("h", "VICTIM", t) for t in (0, 1)] == [0, 0]
    f.succeeded("h", "OWN")  # the attacker's own, valid credential
    assert f.failed("h", "VICTIM", 2) == 10
    assert f.locked_for("h", "VICTIM", 3) == 9 and f.locked_for("h", "OWN", 3) == 0


def test_failures_spread_beyond_the_window_never_lock() -> None:
    f = LogonFailures(max_failures=3, window=60, lockout=10)
    assert [f.failed("h", "S", t) for t in (0, 40, 80, 120, 160)] == [0, 0, 0, 0, 0]
    off = LogonFailures(max_failures=0)
    assert [off.failed("h", "S", 0) for _ in range(10)] == [0] * 10


def test_tracked_addresses_are_bounded() -> None:
    f = LogonFailures(max_failures=3, window=1, max_tracked=100)
    for i in range(1000):
        f.failed(f"10.0.{i // 256}.{i % 256}", "S", float(i))
    assert len(f._records) <= 100


# --- sans-I/O connection ------------------------------------------------------------------


def test_bad_credentials_are_refused_without_touching_the_session() -> None:
    peer = SansIOPeer(username="alice", password_hash=ALICE_HASH)
    replies = peer.feed(peer.logon(30, (553, "alice"), (554, "wrong")))
    assert [fields(m)[58] for m in replies] == ["Invalid username or password"]
    assert [m.msg_type for m in replies] == [b"5"] and peer.closed
    # Nothing stored, no sequence number used: the real client sees no gap.
    assert (peer.store.next_sender_seq, peer.store.next_target_seq) == (1, 1)
    good = SansIOPeer(session=peer.session, registry=peer.registry)
    replies = good.feed(good.logon(30, (553, "alice"), (554, "correct horse")))
    assert [m.msg_type for m in replies] == [b"A"] and replies[0].get(34) == b"1"


def test_messages_after_a_logon_wait_for_its_credential_check() -> None:
    peer = SansIOPeer(username="alice", password_hash=ALICE_HASH)
    data = peer.logon(30, *ALICE) + peer.build("1", (112, "right-after"))
    peer.conn.data_received(data, peer.now)
    assert peer.conn.pending_logon is not None and peer.replies() == []
    peer.conn.credentials_checked(peer.conn.pending_logon.verify(), peer.now)
    replies = peer.replies()
    assert [(m.msg_type, m.get(112)) for m in replies] == [(b"A", None), (b"0", b"right-after")]


# --- over TCP -----------------------------------------------------------------------------


@pytest.fixture
def gateway_settings(tmp_path: Path) -> GatewaySettings:
    return venue_settings(
        tmp_path,
        [
            {"TargetCompID": "CLIENT1", "Username": "alice", "PasswordHash": ALICE_HASH},
            {"TargetCompID": "CLIENT2", "Username": "bob", "PasswordHash": BOB_HASH,
             "AllowedAddresses": ["127.0.0.2/32", "10.0.0.0/8"]},
            {"TargetCompID": "CLIENT3"},
        ],
        security={"max_logon_failures": 3, "logon_failure_window": 60, "lockout": 30},
    )  # fmt: skip


async def refused(port: int, name: str, *extra: tuple[int, object],
                  source: str | None = None) -> dict[int, str]:
    """Log on expecting a refusal: the Logout, after which the gateway closes."""
    client = await Client.connect(port, name, source=source)
    reply = fields(await client.logon(*extra))  # type: ignore[arg-type]
    assert reply[35] == "5", reply
    assert await client.peer.closed_by_peer()
    await client.close()
    return reply


@pytest.mark.socket
async def test_hashed_password_logon_and_order_round_trip(gateway: Gateway) -> None:
    alice = await Client.logged_on(gateway.port, "CLIENT1", *ALICE)
    await alice.order("A1", "buy", 10, "100.00")
    er = await alice.next("8")
    assert (er[11], er[150], er[39]) == ("A1", "0", "0")
    await alice.alive()
    await alice.close()


@pytest.mark.socket
async def test_wrong_or_missing_credentials_get_logout_and_a_log_line(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    wrong = await refused(gateway.port, "CLIENT1", (553, "alice"), (554, "Tr0ub4dor"))
    assert (wrong[58], wrong[49], wrong[56]) == ("Invalid username or password", "FIXGW",
                                                 "CLIENT1")
    missing = await refused(gateway.port, "CLIENT1")
    assert missing[58] == "Invalid username or password"
    wrong_user = await refused(gateway.port, "CLIENT1", (553, "mallory"), ALICE[1])
    assert wrong_user[58] == "Invalid username or password"
    lines = [r.getMessage() for r in caplog.records]
    refusals = [line for line in lines if "reason=bad_credentials" in line]
    assert len(refusals) == 3
    assert all("event=logon_refused" in line and "peer=127.0.0.1:" in line
               and "session=FIXGW-CLIENT1" in line for line in refusals)
    assert not any("Tr0ub4dor" in line or "correct horse" in line for line in lines)


@pytest.mark.socket
async def test_repeated_failures_lock_the_address_out_but_not_others(gateway: Gateway) -> None:
    for _ in range(3):
        await refused(gateway.port, "CLIENT1", (553, "alice"), (554, "guess"))
    # Locked out: even the right password is refused now, before it is checked.
    locked = await refused(gateway.port, "CLIENT1", *ALICE)
    assert locked[58].startswith("Too many failed logons from this address; retry in")
    assert not gateway._by_name["FIXGW-CLIENT1"].connected
    # Another address is served as usual, and so is everyone already logged on.
    alice = await Client.logged_on(gateway.port, "CLIENT1", *ALICE, source="127.0.0.2")
    await alice.order("A1", "buy", 10, "100.00")
    assert (await alice.next("8"))[150] == "0"
    await alice.alive()
    await alice.close()


@pytest.mark.socket
async def test_a_logon_to_ones_own_session_does_not_reset_guesses_at_another(
    gateway: Gateway,
) -> None:
    """bob holds a valid credential for CLIENT2; logging on there must not wipe the
    failures his address has run up guessing CLIENT1's password."""
    bob = (553, "bob"), (554, "battery staple")
    for _ in range(2):
        await refused(gateway.port, "CLIENT1", (553, "alice"), (554, "guess"), source="127.0.0.2")
    own = await Client.logged_on(gateway.port, "CLIENT2", *bob, source="127.0.0.2")
    third = await refused(gateway.port, "CLIENT1", (553, "alice"), (554, "guess"),
                          source="127.0.0.2")
    assert third[58] == "Invalid username or password"
    # The third failure against CLIENT1 locked the address out of CLIENT1 ...
    locked = await refused(gateway.port, "CLIENT1", *ALICE, source="127.0.0.2")
    assert locked[58].startswith("Too many failed logons from this address; retry in")
    assert not gateway._by_name["FIXGW-CLIENT1"].connected
    # ... and of nothing else: bob's own session carries on.
    await own.alive()
    await own.close()


@pytest.mark.socket
async def test_a_wrong_password_is_answered_alike_whether_or_not_the_session_is_live(
    gateway: Gateway,
) -> None:
    """Without the right credentials a peer must not learn that a session is logged on."""
    wrong = (553, "alice"), (554, "guess")
    idle = await refused(gateway.port, "CLIENT1", *wrong)  # Logout, then the gateway closes
    alice = await Client.logged_on(gateway.port, "CLIENT1", *ALICE)
    live = await refused(gateway.port, "CLIENT1", *wrong)
    varying = (52, 10)  # SendingTime, and the CheckSum that covers it
    assert [f for f in live.items() if f[0] not in varying] == \
        [f for f in idle.items() if f[0] not in varying]
    assert live[58] == "Invalid username or password"
    # Only the right credentials learn it is live: closed without a word, as before.
    duplicate = await Client.connect(gateway.port, "CLIENT1")
    await duplicate.peer.write(duplicate.peer.logon(30, *ALICE, now=time.time()))
    with pytest.raises(EOFError):
        await duplicate.peer.receive()
    await duplicate.close()
    await alice.alive()  # and the live session never noticed
    await alice.close()


@pytest.mark.socket
async def test_allow_list_refuses_other_addresses(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bob = (553, "bob"), (554, "battery staple")
    reply = await refused(gateway.port, "CLIENT2", *bob, source="127.0.0.1")
    assert reply[58] == "Logon not permitted from this address"
    assert any("event=logon_refused reason=address_not_allowed peer=127.0.0.1:" in r.getMessage()
               and "session=FIXGW-CLIENT2" in r.getMessage() for r in caplog.records)
    client = await Client.logged_on(gateway.port, "CLIENT2", *bob, source="127.0.0.2")
    await client.alive()
    await client.close()


@pytest.mark.socket
async def test_sessions_only_ever_see_their_own_executions(gateway: Gateway) -> None:
    """Two firms trade with each other: each gets reports for its own orders only."""
    buyer = await Client.logged_on(gateway.port, "CLIENT1", *ALICE)
    seller = await Client.logged_on(gateway.port, "CLIENT3")
    buys: list[dict[int, str]] = []
    sells: list[dict[int, str]] = []

    async def step(buyer_gets: int, seller_gets: int) -> None:
        buys.extend([await buyer.next("8") for _ in range(buyer_gets)])
        sells.extend([await seller.next("8") for _ in range(seller_gets)])
        await buyer.alive()  # and nothing else was sent to either
        await seller.alive()

    await buyer.order("BUY-1", "buy", 100, "100.00")
    await buyer.order("BUY-2", "buy", 50, "99.00")
    await step(2, 0)  # two acks
    await seller.order("SELL-1", "sell", 60, "100.00")
    await step(1, 2)  # fill 60 of BUY-1; ack + fill of SELL-1
    await seller.order("SELL-2", "sell", 70, "99.00")
    await step(2, 3)  # fills 40 (BUY-1), 30 (BUY-2); ack + two fills of SELL-2
    await buyer.cancel("CXL-1", "BUY-2", "buy")
    await step(1, 0)  # the cancel of BUY-2's remaining 20
    assert [f[11] for f in buys] == ["BUY-1", "BUY-2", "BUY-1", "BUY-1", "BUY-2", "CXL-1"]
    assert [f[11] for f in sells] == ["SELL-1", "SELL-1", "SELL-2", "SELL-2", "SELL-2"]
    assert all((f[56], f[54], f[49]) == ("CLIENT1", "1", "FIXGW") for f in buys)
    assert all((f[56], f[54], f[49]) == ("CLIENT3", "2", "FIXGW") for f in sells)
    assert not {f[37] for f in buys} & {f[37] for f in sells}
    assert [int(f[32]) for f in buys if f[150] == "F"] == [60, 40, 30]
    assert [int(f[32]) for f in sells if f[150] == "F"] == [60, 40, 30]
    await buyer.close()
    await seller.close()
