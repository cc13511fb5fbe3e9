"""Order entry over real TCP: FIX in, ExecutionReports out, field by field.

An in-process gateway (application "orders") on an ephemeral loopback port,
three client sessions, instruments with a tick size, a price band and a lot
size. Each test sends real FIX messages from one or more sessions and
asserts the exact fields of what comes back; every reject test ends by
proving the session is still alive (a TestRequest is answered, and nothing
else was queued before the answer). The last tests drive `fixgw client` as a
subprocess against the same in-process gateway.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fix_gateway.client import (
    CancelCmd,
    CommandError,
    MassCancelCmd,
    OrderCmd,
    ReplaceCmd,
    WaitCmd,
    parse_command,
)
from fix_gateway.codec import FieldValue, Message
from fix_gateway.config import GatewaySettings
from fix_gateway.server import Gateway
from fix_gateway.utc_time import format_timestamp
from tests.gateway_settings import ORDER_ENTRY_CLIENTS, order_entry_settings
from tests.venue import Trader, fields

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def gateway_settings(tmp_path: Path) -> GatewaySettings:
    return order_entry_settings(tmp_path)


def body_tags(msg: Message) -> list[int]:
    """The message's body tags in wire order (no header, no trailer)."""
    header = {8, 9, 35, 34, 49, 52, 56, 43, 122, 10}
    return [tag for tag in msg.tags if tag not in header]


@pytest.fixture
async def traders(gateway: Gateway) -> AsyncIterator[tuple[Trader, Trader, Trader]]:
    one, two, three = [await Trader.log_on(gateway.port, name) for name in ORDER_ENTRY_CLIENTS]
    yield one, two, three
    for t in (one, two, three):
        await t.peer.close()


def assert_fill(
    f: dict[int, str], *, last: int, px: str, liquidity: str, leaves: int, cum: int,
    avgpx: str, status: str,
) -> None:
    assert (f[150], f[39]) == ("F", status), f
    assert (f[32], f[31], f[851]) == (str(last), px, liquidity), f
    assert (f[151], f[14], f[6]) == (str(leaves), str(cum), avgpx), f


# --- NewOrderSingle -----------------------------------------------------------------


async def test_limit_order_is_acknowledged_with_every_field(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, _, _ = traders
    before = time.time()
    await one.order("ORDER-1", "buy", 100, "ACME", "101.25", None, (1, "ACC1"), (59, "1"))
    msg = await one.next("8")
    assert (msg.get(49), msg.get(56)) == (b"FIXGW", b"CLIENT1")
    assert body_tags(msg) == [37, 11, 17, 150, 39, 1, 55, 54, 38, 40, 44, 59, 151, 14, 6, 60]
    f = fields(msg)
    assert f[37].isdigit() and f[17]
    assert {k: f[k] for k in (11, 150, 39, 1, 55, 54, 38, 40, 44, 59, 151, 14, 6)} == {
        11: "ORDER-1", 150: "0", 39: "0", 1: "ACC1", 55: "ACME", 54: "1", 38: "100",
        40: "2", 44: "101.25", 59: "1", 151: "100", 14: "0", 6: "0",
    }  # fmt: skip
    transact = datetime.strptime(f[60], "%Y%m%d-%H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
    assert before - 1 <= transact <= time.time() + 1
    await one.alive()


async def test_crossing_orders_fill_both_sides(traders: tuple[Trader, Trader, Trader]) -> None:
    one, two, _ = traders
    await one.order("B1", "buy", 100, "ACME", "101.25")
    new_buy = await one.er("0")
    await two.order("S1", "sell", 40, "ACME", "101.25")
    new_sell = await two.er("0")
    assert (new_sell[11], new_sell[39], new_sell[151]) == ("S1", "0", "40")
    aggressor = await two.er("F")
    assert aggressor[11] == "S1" and aggressor[37] == new_sell[37]
    assert_fill(aggressor, last=40, px="101.25", liquidity="2", leaves=0, cum=40,
                avgpx="101.25", status="2")
    resting = await one.er("F")
    assert resting[11] == "B1" and resting[37] == new_buy[37]
    assert_fill(resting, last=40, px="101.25", liquidity="1", leaves=60, cum=40,
                avgpx="101.25", status="1")
    # A second, better-priced sell fills the rest at the resting order's price.
    await two.order("S2", "sell", 60, "ACME", "101.00")
    assert (await two.er("0"))[11] == "S2"
    agg2 = await two.er("F")
    assert_fill(agg2, last=60, px="101.25", liquidity="2", leaves=0, cum=60, avgpx="101.25",
                status="2")
    rest2 = await one.er("F")
    assert_fill(rest2, last=60, px="101.25", liquidity="1", leaves=0, cum=100,
                avgpx="101.25", status="2")
    exec_ids = [f[17] for f in (new_buy, new_sell, aggressor, resting, agg2, rest2)]
    assert len(set(exec_ids)) == len(exec_ids), exec_ids
    await one.alive()
    await two.alive()


async def test_average_price_over_two_fills(traders: tuple[Trader, Trader, Trader]) -> None:
    one, two, _ = traders
    await one.order("S1", "sell", 10, "ACME", "10.00")
    await one.er("0")
    await one.order("S2", "sell", 30, "ACME", "10.01")
    await one.er("0")
    await two.order("B1", "buy", 40, "ACME", "10.01")
    await two.er("0")
    first = await two.er("F")
    assert_fill(first, last=10, px="10.00", liquidity="2", leaves=30, cum=10, avgpx="10",
                status="1")
    second = await two.er("F")
    # (10 * 10.00 + 30 * 10.01) / 40 = 10.0075
    assert_fill(second, last=30, px="10.01", liquidity="2", leaves=0, cum=40, avgpx="10.0075",
                status="2")
    await two.alive()


async def test_market_order_into_empty_book_is_cancelled(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    # An order that neither trades nor rests gets one report: Canceled, not New then Canceled.
    one, _, _ = traders
    await one.order("M1", "buy", 50, "ACME")
    done = await one.er("4")
    assert (done[11], done[39], done[40], done[151], done[14], done[6]) == (
        "M1", "4", "1", "0", "0", "0")
    assert done[37].isdigit() and 44 not in done and 32 not in done
    assert done[58] == "no liquidity"
    await one.alive()  # nothing else was sent for M1


async def test_ioc_with_nothing_executable_gets_one_cancel(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, two, _ = traders
    await one.order("S1", "sell", 30, "ACME", "10.00")
    await one.er("0")
    await two.order("I0", "buy", 100, "ACME", "9.99", None, (59, "3"))
    done = await two.er("4")
    assert (done[11], done[39], done[59], done[151], done[14], done[58]) == (
        "I0", "4", "3", "0", "0", "IOC remainder")
    await two.alive()
    await one.alive()


async def test_ioc_remainder_is_cancelled(traders: tuple[Trader, Trader, Trader]) -> None:
    one, two, _ = traders
    await one.order("S1", "sell", 30, "ACME", "10.00")
    await one.er("0")
    await two.order("I1", "buy", 100, "ACME", "10.00", None, (59, "3"))
    new = await two.er("0")
    assert new[59] == "3"
    assert_fill(await two.er("F"), last=30, px="10.00", liquidity="2", leaves=70, cum=30,
                avgpx="10", status="1")
    rest = await two.er("4")
    assert (rest[11], rest[39], rest[151], rest[14], rest[58]) == (
        "I1", "4", "0", "30", "IOC remainder")
    assert_fill(await one.er("F"), last=30, px="10.00", liquidity="1", leaves=0, cum=30,
                avgpx="10", status="2")
    await one.alive()
    await two.alive()


async def test_fok_that_cannot_fill_is_cancelled_without_a_fill(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, two, _ = traders
    await one.order("S1", "sell", 30, "ACME", "10.00")
    await one.er("0")
    await two.order("F1", "buy", 100, "ACME", "10.00", None, (59, "4"))
    done = await two.er("4")  # no New before it: the order never traded nor rested
    assert (done[11], done[39], done[59], done[151], done[14], done[6]) == (
        "F1", "4", "4", "0", "0", "0")
    assert 32 not in done
    await two.alive()
    await one.alive()  # the resting sell was not touched
    await one.send("H", (11, "S1"), (55, "ACME"), (54, "2"))
    status = await one.er("I")
    assert (status[39], status[151], status[14]) == ("0", "30", "0")


async def test_stop_order_is_triggered_by_a_trade(traders: tuple[Trader, Trader, Trader]) -> None:
    one, two, three = traders
    await one.order("STOP1", "buy", 10, "ACME", None, "3", (99, "101.00"))
    pending = await one.er("0")
    # Accepted and working as a stop: ExecType and OrdStatus agree (no 39=A with 150=0).
    assert (pending[39], pending[40], pending[99], pending[151]) == ("0", "3", "101.00", "10")
    assert 44 not in pending
    await two.order("S1", "sell", 30, "ACME", "101.00")
    await two.er("0")
    await three.order("B1", "buy", 10, "ACME", "101.00")
    await three.er("0")
    assert_fill(await three.er("F"), last=10, px="101.00", liquidity="2", leaves=0, cum=10,
                avgpx="101", status="2")
    # The trigger in FIX 4.4 values: Restated (150=D), ExecRestatementReason 99 Other.
    triggered = await one.er("D")
    assert (triggered[11], triggered[39], triggered[151], triggered[37]) == (
        "STOP1", "0", "10", pending[37])
    assert (triggered[378], triggered[58]) == ("99", "stop triggered")
    assert_fill(await one.er("F"), last=10, px="101.00", liquidity="2", leaves=0, cum=10,
                avgpx="101", status="2")
    assert_fill(await two.er("F"), last=10, px="101.00", liquidity="1", leaves=20, cum=10,
                avgpx="101", status="1")
    assert_fill(await two.er("F"), last=10, px="101.00", liquidity="1", leaves=10, cum=20,
                avgpx="101", status="1")
    await one.alive()
    await two.alive()


async def test_iceberg_trades_one_display_slice_at_a_time(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, two, three = traders
    await one.order("ICE", "sell", 100, "ACME", "10.00", None, (111, 20))
    new = await one.er("0")
    assert (new[111], new[38], new[151]) == ("20", "100", "100")
    await two.order("PLAIN", "sell", 30, "ACME", "10.00")  # same price, behind the iceberg
    await two.er("0")
    await three.order("B1", "buy", 50, "ACME", "10.00")
    await three.er("0")
    # Only the 20 shown trade first; the next slice goes behind PLAIN.
    first = await three.er("F")
    second = await three.er("F")
    assert (first[32], second[32]) == ("20", "30")
    assert_fill(second, last=30, px="10.00", liquidity="2", leaves=0, cum=50, avgpx="10",
                status="2")
    ice = await one.er("F")
    assert (ice[11], ice[32], ice[151], ice[14], ice[111]) == ("ICE", "20", "80", "20", "20")
    plain = await two.er("F")
    assert (plain[11], plain[32], plain[151], plain[39]) == ("PLAIN", "30", "0", "2")
    await one.alive()
    await two.alive()


async def test_iceberg_with_too_many_slices_is_rejected(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    # engine.max_iceberg_slices (1000 by default): MaxFloor 1 of 50,000 would be 50,000 fills.
    one, _, _ = traders
    await one.order("ICE1", "sell", 50_000, "ACME", "10.00", None, (111, 1))
    f = await _rejected(one, "ICE1", "99")
    assert (f[38], f[58]) == ("50000", "MaxFloor 1 is too small for an order quantity of "
                              "50000: an iceberg shows at most 1000 slices, so MaxFloor must "
                              "be at least 50")
    await one.order("ICE2", "sell", 50_000, "ACME", "10.00", None, (111, 50))
    assert (await one.er("0"))[111] == "50"


async def test_gtd_order_echoes_expire_time_and_expires(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, _, _ = traders
    expire = format_timestamp(time.time() + 1.0).decode()
    await one.order("G1", "buy", 10, "ACME", "9.00", None, (59, "6"), (126, expire))
    new = await one.er("0")
    assert (new[59], new[126], new[39]) == ("6", expire, "0")
    expired = await one.er("C")
    assert (expired[11], expired[39], expired[151], expired[126]) == ("G1", "C", "0", expire)
    await one.alive()


# --- OrderCancelRequest / OrderCancelReplaceRequest ----------------------------------


async def test_cancel_request(traders: tuple[Trader, Trader, Trader]) -> None:
    one, _, _ = traders
    await one.order("B1", "buy", 100, "ACME", "10.00")
    new = await one.er("0")
    await one.cancel("C1", "B1", "ACME", "buy")
    done = await one.er("4")
    assert {k: done[k] for k in (37, 11, 41, 39, 55, 54, 38, 151, 14)} == {
        37: new[37], 11: "C1", 41: "B1", 39: "4", 55: "ACME", 54: "1", 38: "100",
        151: "0", 14: "0",
    }  # fmt: skip
    assert done[17] != new[17]
    await one.alive()


async def test_replace_quantity_down_keeps_priority(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, two, three = traders
    await one.order("A", "sell", 100, "ACME", "10.00")
    await one.er("0")
    await two.order("B", "sell", 100, "ACME", "10.00")
    await two.er("0")
    await one.replace("A2", "A", "ACME", "sell", 60, "10.00")
    replaced = await one.er("5")
    assert {k: replaced[k] for k in (11, 41, 39, 38, 44, 151, 14)} == {
        11: "A2", 41: "A", 39: "0", 38: "60", 44: "10.00", 151: "60", 14: "0"}
    await three.order("T", "buy", 60, "ACME", "10.00")
    await three.er("0")
    await three.er("F")
    fill = await one.er("F")  # A kept its place ahead of B
    assert (fill[11], fill[32], fill[151], fill[39]) == ("A2", "60", "0", "2")
    await two.alive()  # B got nothing


async def test_replace_price_change_loses_priority(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, two, three = traders
    await one.order("A", "sell", 100, "ACME", "10.01")  # entered first ...
    await one.er("0")
    await two.order("B", "sell", 100, "ACME", "10.00")
    await two.er("0")
    await one.replace("A2", "A", "ACME", "sell", 100, "10.00")  # ... but re-priced after B
    replaced = await one.er("5")
    assert (replaced[11], replaced[41], replaced[44], replaced[151]) == (
        "A2", "A", "10.00", "100")
    await three.order("T", "buy", 50, "ACME", "10.00")
    await three.er("0")
    await three.er("F")
    fill = await two.er("F")
    assert (fill[11], fill[32], fill[151]) == ("B", "50", "50")
    await one.alive()  # A got nothing


async def test_replace_at_filled_quantity_cancels_the_rest(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, two, _ = traders
    await one.order("A", "sell", 100, "ACME", "10.00")
    await one.er("0")
    await two.order("T", "buy", 40, "ACME", "10.00")
    await two.er("0")
    await two.er("F")
    await one.er("F")
    await one.replace("A2", "A", "ACME", "sell", 40, "10.00")
    done = await one.er("4")
    assert {k: done[k] for k in (11, 41, 39, 151, 14, 6)} == {
        11: "A2", 41: "A", 39: "4", 151: "0", 14: "40", 6: "10"}
    assert done[58] == "replaced at or below filled quantity"
    await one.alive()


# --- OrderStatusRequest / OrderMassCancelRequest -------------------------------------


async def test_order_status_request(traders: tuple[Trader, Trader, Trader]) -> None:
    one, two, _ = traders
    await one.order("B1", "buy", 100, "ACME", "10.00")
    new = await one.er("0")
    await two.order("S1", "sell", 25, "ACME", "10.00")
    await one.er("F")
    await one.send("H", (11, "B1"), (55, "ACME"), (54, "1"))
    status = await one.er("I")
    assert {k: status[k] for k in (37, 11, 39, 55, 54, 38, 44, 151, 14, 6)} == {
        37: new[37], 11: "B1", 39: "1", 55: "ACME", 54: "1", 38: "100", 44: "10.00",
        151: "75", 14: "25", 6: "10",
    }  # fmt: skip
    await one.alive()


async def test_order_status_of_unknown_order(traders: tuple[Trader, Trader, Trader]) -> None:
    one, _, _ = traders
    await one.send("H", (11, "NOPE"), (55, "ACME"), (54, "2"))
    status = await one.er("I")
    # Every ExecutionReport carries OrderQty(38): 0 for an order the venue does not know.
    assert {k: status[k] for k in (37, 11, 39, 103, 55, 54, 38, 151, 14)} == {
        37: "NONE", 11: "NOPE", 39: "8", 103: "5", 55: "ACME", 54: "2", 38: "0", 151: "0",
        14: "0"}
    await one.alive()


async def test_mass_cancel_by_symbol_then_all(traders: tuple[Trader, Trader, Trader]) -> None:
    one, two, _ = traders
    for cl_ord_id, symbol, price in (("A1", "ACME", "10.00"), ("A2", "ACME", "10.01"),
                                     ("G1", "GLOBEX", "20.05")):
        await one.order(cl_ord_id, "buy", 10, symbol, price)
        await one.er("0")
    await two.order("OTHER", "buy", 10, "ACME", "10.00")  # another session's: untouched
    await two.er("0")
    now = format_timestamp(time.time())
    await one.send("q", (11, "MC1"), (530, "1"), (55, "ACME"), (60, now))
    cancelled = [await one.er("4"), await one.er("4")]
    assert sorted(f[11] for f in cancelled) == ["A1", "A2"]
    assert all(f[39] == "4" and f[151] == "0" for f in cancelled)
    report = fields(await one.next("r"))
    assert {k: report[k] for k in (11, 530, 531, 533, 55)} == {
        11: "MC1", 530: "1", 531: "1", 533: "2", 55: "ACME"}
    await one.send("q", (11, "MC2"), (530, "7"), (60, now))
    last = await one.er("4")
    assert last[11] == "G1"
    report = fields(await one.next("r"))
    assert {k: report[k] for k in (11, 530, 531, 533)} == {
        11: "MC2", 530: "7", 531: "7", 533: "1"}
    await one.alive()
    await two.alive()
    await two.send("H", (11, "OTHER"), (55, "ACME"), (54, "1"))
    assert (await two.er("I"))[39] == "0"


async def test_mass_cancel_of_unknown_symbol_is_rejected(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, _, _ = traders
    now = format_timestamp(time.time())
    await one.send("q", (11, "MC9"), (530, "1"), (55, "NOSUCH"), (60, now))
    report = fields(await one.next("r"))
    assert {k: report[k] for k in (11, 530, 531, 532)} == {
        11: "MC9", 530: "1", 531: "0", 532: "1"}
    assert "NOSUCH" in report[58]
    await one.alive()


# --- rejects ---------------------------------------------------------------------------


async def _rejected(trader: Trader, cl_ord_id: str, reason: str) -> dict[int, str]:
    f = await trader.er("8")
    assert {k: f[k] for k in (37, 11, 39, 103, 151, 14)} == {
        37: "NONE", 11: cl_ord_id, 39: "8", 103: reason, 151: "0", 14: "0"}, f
    assert f.get(58), f
    await trader.alive()
    return f


async def test_reject_unknown_symbol(traders: tuple[Trader, Trader, Trader]) -> None:
    one, _, _ = traders
    await one.order("X1", "buy", 100, "NOSUCH", "10.00")
    f = await _rejected(one, "X1", "1")
    assert (f[55], f[54], f[38]) == ("NOSUCH", "1", "100")


async def test_reject_price_off_tick(traders: tuple[Trader, Trader, Trader]) -> None:
    one, _, _ = traders
    # OrdRejReason 18 (invalid price increment) is not a FIX 4.4 value: 99 Other, and a Text.
    await one.order("X1", "buy", 100, "ACME", "10.001")
    f = await _rejected(one, "X1", "99")
    assert "tick" in f[58]
    await one.order("X2", "buy", 100, "GLOBEX", "20.02")  # GLOBEX ticks by 0.05
    await _rejected(one, "X2", "99")


async def test_reject_price_outside_band(traders: tuple[Trader, Trader, Trader]) -> None:
    one, _, _ = traders
    await one.order("X1", "buy", 100, "BANDED", "110.01")
    f = await _rejected(one, "X1", "99")
    assert "band" in f[58]
    await one.order("X2", "sell", 100, "BANDED", "89.99")
    await _rejected(one, "X2", "99")
    await one.order("OK", "buy", 100, "BANDED", "110.00")  # the bound itself is inside
    assert (await one.er("0"))[11] == "OK"


async def test_reject_price_not_positive(traders: tuple[Trader, Trader, Trader]) -> None:
    one, _, _ = traders  # ACME has no band: prices must still be above zero
    await one.order("X1", "buy", 100, "ACME", "0")
    f = await _rejected(one, "X1", "99")
    assert f[58] == "price 0.00 must be positive", f[58]
    await one.order("X2", "sell", 100, "ACME", "-1.50")
    f = await _rejected(one, "X2", "99")
    assert f[58] == "price -1.50 must be positive", f[58]
    await one.order("OK", "buy", 100, "ACME", "0.01")  # the session goes on
    assert (await one.er("0"))[11] == "OK"


async def test_reject_quantity_not_positive_or_not_a_lot(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, _, _ = traders
    await one.order("X1", "buy", 0, "ACME", "10.00")
    await _rejected(one, "X1", "13")
    await one.order("X2", "buy", 150, "LOTS", "10.00")
    f = await _rejected(one, "X2", "13")
    assert "lot" in f[58]
    await one.order("OK", "buy", 200, "LOTS", "10.00")
    assert (await one.er("0"))[11] == "OK"


async def test_reject_quantity_or_price_beyond_range_or_instrument_maximum(
    gateway: Gateway, traders: tuple[Trader, Trader, Trader],
) -> None:
    """Numbers too large for the venue are refused at the boundary (they once broke the
    surveillance columns and the connection); each instrument has its own maximum."""
    one, _, _ = traders
    await one.order("X1", "buy", "9" * 23, "ACME", "10.00")
    f = await _rejected(one, "X1", "13")
    assert "range" in f[58] and f[38] == "0", f
    await one.order("X2", "buy", 100, "ACME", "9" * 26 + ".00")
    f = await _rejected(one, "X2", "99")
    assert "price range" in f[58], f
    await one.order("X3", "buy", 100, "ACME", "10.00", "2", (110, "9" * 20))
    assert "MinQty(110)" in (await _rejected(one, "X3", "13"))[58]
    await one.order("X4", "buy", 1001, "CAPPED", "10.00")
    f = await _rejected(one, "X4", "13")
    assert "maximum order quantity 1000" in f[58], f
    await one.order("OK", "buy", 1000, "CAPPED", "10.00")
    new = await one.er("0")
    # A replace past the range or the maximum is refused; the order stays as it was.
    for cl_ord_id, qty, words in (("OK2", 10**24, "range"), ("OK3", 2000, "maximum")):
        await one.replace(cl_ord_id, "OK", "CAPPED", "buy", qty, "10.00")
        rej = fields(await one.next("9"))
        assert (rej[37], rej[39], rej[434]) == (new[37], "0", "2") and words in rej[58], rej
    await one.send("H", (11, "OK"), (55, "CAPPED"), (54, "1"))
    assert (await one.er("I"))[38] == "1000"
    await one.alive()
    assert gateway.surveillance is not None and gateway.surveillance.rows_lost == 0


async def test_identifiers_are_echoed_byte_for_byte(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    """ClOrdID and Account come back exactly as sent, whatever their bytes."""
    one, _, _ = traders
    cl_ord_id, account = b"caf\xe9-1", b"\xe9t\xe9"
    await one.send("D", (11, cl_ord_id), (1, account), (55, "ACME"), (54, "1"),
                   (60, format_timestamp(time.time())), (38, 10), (40, "2"), (44, "10.00"))
    ack = await one.next("8")
    assert (ack.get(150), ack.get(11), ack.get(1)) == (b"0", cl_ord_id, account), ack
    await one.send("F", (11, b"caf\xe9-2"), (41, cl_ord_id), (55, "ACME"), (54, "1"),
                   (60, format_timestamp(time.time())))
    done = await one.next("8")
    assert (done.get(150), done.get(11), done.get(41)) == (b"4", b"caf\xe9-2", cl_ord_id), done
    await one.alive()


async def test_reject_duplicate_cl_ord_id(traders: tuple[Trader, Trader, Trader]) -> None:
    one, two, _ = traders
    await one.order("D1", "buy", 10, "ACME", "10.00")
    first = await one.er("0")
    await one.order("D1", "buy", 20, "ACME", "10.00")
    await _rejected(one, "D1", "6")
    await two.order("D1", "buy", 10, "ACME", "10.00")  # ClOrdIDs are per session
    assert (await two.er("0"))[11] == "D1"
    await one.send("H", (11, "D1"), (55, "ACME"), (54, "1"))
    status = await one.er("I")
    assert (status[37], status[38]) == (first[37], "10")  # the original order is intact


async def test_reject_market_order_with_price(traders: tuple[Trader, Trader, Trader]) -> None:
    one, _, _ = traders
    await one.order("X1", "buy", 10, "ACME", "10.00", "1")
    f = await _rejected(one, "X1", "11")
    assert f[40] == "1"


async def test_band_reject_text_shows_prices_not_ticks(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, _, _ = traders
    await one.order("X1", "buy", 100, "BANDED", "110.01")
    f = await _rejected(one, "X1", "99")
    assert "110.01" in f[58] and "110.00" in f[58], f[58]


async def test_replace_may_change_only_quantity_and_prices(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, _, _ = traders
    await one.order("A", "buy", 100, "ACME", "10.00", None, (59, "1"))  # GTC limit
    new = await one.er("0")

    async def replace(cl_ord_id: str, *terms: tuple[int, str]) -> None:
        await one.send("G", (41, "A"), (11, cl_ord_id), (55, "ACME"), (54, "1"),
                       (60, format_timestamp(time.time())), (38, 50), (44, "10.00"), *terms)

    await replace("A2", (40, "1"))  # to a market order
    rej = fields(await one.next("9"))
    assert (rej[11], rej[41], rej[37], rej[39], rej[434], rej[102]) == (
        "A2", "A", new[37], "0", "2", "99"), rej
    assert rej[58].startswith("OrdType(40) cannot change in a replace"), rej[58]
    await replace("A3", (40, "2"), (59, "0"))  # GTC to Day
    rej = fields(await one.next("9"))
    assert rej[58].startswith("TimeInForce(59) cannot change in a replace"), rej[58]
    await replace("A3b", (40, "2"), (111, "10"))  # an iceberg now
    rej = fields(await one.next("9"))
    assert rej[58].startswith("MaxFloor(111) cannot change in a replace"), rej[58]
    await replace("A4", (40, "2"), (59, "1"), (110, "0"))  # the same terms: replaced
    replaced = await one.er("5")
    assert (replaced[11], replaced[41], replaced[38], replaced[59]) == ("A4", "A", "50", "1")
    await one.alive()


async def test_replace_off_tick_of_live_order_reports_its_status(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, _, _ = traders
    await one.order("A", "buy", 100, "ACME", "10.00")
    new = await one.er("0")
    await one.replace("A2", "A", "ACME", "buy", 100, "10.001")
    rej = fields(await one.next("9"))
    assert (rej[434], rej[41], rej[11]) == ("2", "A", "A2")
    # FIX 4.4: OrdStatus(39) is the order's status after the reject (still New), and
    # Rejected (8) only when the order is unknown.
    assert (rej[37], rej[39]) == (new[37], "0"), rej
    await one.alive()


async def test_cancel_and_replace_of_unknown_order_are_rejected(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, _, _ = traders
    await one.cancel("C1", "NOPE", "ACME", "buy")
    rej = fields(await one.next("9"))
    assert {k: rej[k] for k in (37, 11, 41, 39, 434, 102)} == {
        37: "NONE", 11: "C1", 41: "NOPE", 39: "8", 434: "1", 102: "1"}
    assert rej.get(58)
    await one.alive()
    await one.replace("R1", "NOPE", "ACME", "buy", 10, "10.00")
    rej = fields(await one.next("9"))
    assert {k: rej[k] for k in (37, 11, 41, 39, 434, 102)} == {
        37: "NONE", 11: "R1", 41: "NOPE", 39: "8", 434: "2", 102: "1"}
    await one.alive()


async def test_cancel_of_filled_order_is_too_late(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, two, _ = traders
    await one.order("S1", "sell", 10, "ACME", "10.00")
    new = await one.er("0")
    await two.order("B1", "buy", 10, "ACME", "10.00")
    await one.er("F")
    await one.cancel("C1", "S1", "ACME", "sell")
    rej = fields(await one.next("9"))
    assert {k: rej[k] for k in (37, 11, 41, 39, 434, 102)} == {
        37: new[37], 11: "C1", 41: "S1", 39: "2", 434: "1", 102: "0"}
    await one.alive()


async def test_self_trade_prevention_cancels_the_resting_order(
    traders: tuple[Trader, Trader, Trader],
) -> None:
    one, two, _ = traders
    await one.order("B1", "buy", 100, "ACME", "10.00", None, (1, "SAME"))
    await one.er("0")
    await two.order("S1", "sell", 100, "ACME", "10.00", None, (1, "SAME"))
    new = await two.er("0")
    assert (new[1], new[39]) == ("SAME", "0")
    cancelled = await one.er("4")
    assert (cancelled[11], cancelled[39], cancelled[14], cancelled[1]) == ("B1", "4", "0", "SAME")
    assert "self-trade" in cancelled[58]
    await two.alive()  # no fill: the sell rests
    await one.alive()
    await two.send("H", (11, "S1"), (55, "ACME"), (54, "2"))
    status = await two.er("I")
    assert (status[39], status[151], status[14]) == ("0", "100", "0")


# --- fixgw client ----------------------------------------------------------------------


@pytest.mark.unit
def test_client_command_language() -> None:
    order = parse_command("buy 100 ACME @ 101.25 tif ioc account A1 id X1")
    assert order == OrderCmd("1", "100", "ACME", price="101.25", tif="3", account="A1",
                             cl_ord_id="X1")
    assert isinstance(order, OrderCmd) and order.derived_type == "2"
    stop = parse_command("SELL 5 GLOBEX stop 20.05")
    assert isinstance(stop, OrderCmd) and stop.derived_type == "3"
    stop_limit = parse_command("sell 5 GLOBEX @20.00 stop 20.05 maxfloor 1 minqty 2")
    assert isinstance(stop_limit, OrderCmd) and stop_limit.derived_type == "4"
    assert (stop_limit.max_floor, stop_limit.min_qty) == ("1", "2")
    market = parse_command("buy 7 ACME")
    assert isinstance(market, OrderCmd) and market.derived_type == "1"
    gtd = parse_command("buy 1 ACME @ 1 expire 20300101-00:00:00")
    assert isinstance(gtd, OrderCmd) and (gtd.tif, gtd.expire) == ("6", "20300101-00:00:00")
    assert parse_command("cancel X1") == CancelCmd("X1")
    assert parse_command("replace X1 qty 50 @ 10.5 id X2") == ReplaceCmd(
        "X1", "50", price="10.5", cl_ord_id="X2")
    assert parse_command("masscancel ACME") == MassCancelCmd("ACME")
    assert parse_command("masscancel") == MassCancelCmd()
    assert parse_command("wait 0.5") == WaitCmd(0.5)
    assert parse_command("  # a comment") is None
    for bad in ("buy ACME 100", "buy 100", "hold 1 ACME", "replace X1 @ 10", "buy 1 A tif xx",
                "wait soon"):
        with pytest.raises(CommandError):
            parse_command(bad)


async def _run_client(port: int, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fix_gateway.cli", "client", "--port", str(port), *args,
        cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.process
async def test_fixgw_client_buy_and_crossing_sell(gateway: Gateway) -> None:
    # CLIENT1 stays connected, reading commands from a pipe, while CLIENT2 crosses it.
    buyer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fix_gateway.cli", "client", "--port", str(gateway.port),
        "--sender", "CLIENT1", "--json", "--timeout", "0.2", "buy 100 ACME @ 101.25 id B1",
        cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert buyer.stdout is not None and buyer.stdin is not None

    async def buyer_message() -> dict[str, str]:
        assert buyer.stdout is not None
        line = await asyncio.wait_for(buyer.stdout.readline(), 20)
        assert line, "the buying client ended early"
        return json.loads(line)

    try:
        logon = await buyer_message()
        assert (logon["MsgType"], logon["SenderCompID"], logon["TargetCompID"]) == (
            "A", "FIXGW", "CLIENT1")
        new = await buyer_message()
        assert {k: new[k] for k in ("MsgType", "ClOrdID", "ExecType", "OrdStatus", "Symbol",
                                    "Side", "OrderQty", "Price", "LeavesQty")} == {
            "MsgType": "8", "ClOrdID": "B1", "ExecType": "0", "OrdStatus": "0",
            "Symbol": "ACME", "Side": "1", "OrderQty": "100", "Price": "101.25",
            "LeavesQty": "100"}  # fmt: skip

        rc, out, err = await _run_client(
            gateway.port, "--sender", "CLIENT2", "--json", "--timeout", "0.3",
            "sell 40 ACME @ 101.25 id S1")
        assert rc == 0, err
        seller = [json.loads(line) for line in out.splitlines()]
        assert [m["MsgType"] for m in seller] == ["A", "8", "8", "5"], out
        assert [m["ExecType"] for m in seller[1:3]] == ["0", "F"]
        fill = seller[2]
        assert {k: fill[k] for k in ("ClOrdID", "LastQty", "LastPx", "LastLiquidityInd",
                                     "LeavesQty", "CumQty", "AvgPx", "OrdStatus")} == {
            "ClOrdID": "S1", "LastQty": "40", "LastPx": "101.25", "LastLiquidityInd": "2",
            "LeavesQty": "0", "CumQty": "40", "AvgPx": "101.25", "OrdStatus": "2"}

        resting = await buyer_message()
        assert {k: resting[k] for k in ("ClOrdID", "ExecType", "LastQty", "LastLiquidityInd",
                                        "LeavesQty", "CumQty", "OrdStatus")} == {
            "ClOrdID": "B1", "ExecType": "F", "LastQty": "40", "LastLiquidityInd": "1",
            "LeavesQty": "60", "CumQty": "40", "OrdStatus": "1"}
        # Cancel by the remembered ClOrdID alone, then log out.
        buyer.stdin.write(b"cancel B1 id C1\nlogout\n")
        await buyer.stdin.drain()
        buyer.stdin.close()
        cancelled = await buyer_message()
        assert {k: cancelled[k] for k in ("ClOrdID", "OrigClOrdID", "ExecType", "OrdStatus",
                                          "CumQty", "LeavesQty")} == {
            "ClOrdID": "C1", "OrigClOrdID": "B1", "ExecType": "4", "OrdStatus": "4",
            "CumQty": "40", "LeavesQty": "0"}
        assert (await buyer_message())["MsgType"] == "5"
        assert await asyncio.wait_for(buyer.wait(), 20) == 0
    finally:
        if buyer.returncode is None:
            buyer.kill()
            await buyer.wait()


@pytest.mark.process
async def test_fixgw_client_text_output_and_exit_codes(gateway: Gateway) -> None:
    rc, out, err = await _run_client(
        gateway.port, "--sender", "CLIENT3", "--timeout", "0.2",
        stdin=b"buy 100 ACME @ 101.25 id T1\nbuy 5 ACME @ 1.001 id T2\nbogus\n"
              b"replace T1 qty 50\nstatus T1\nmasscancel\n")
    assert rc == 2, (out, err)  # one command could not be parsed; the rest ran
    assert "unknown command 'bogus'" in err
    lines = out.splitlines()
    assert lines[0].startswith("LOGON  seq=1 heartbeat=30")
    assert lines[1].startswith("ER  T1  New  ExecType=0 OrdStatus=0 ACME Buy 100 @ 101.25"
                               "  leaves=100 cum=0 avgpx=0 orderid=")
    assert lines[2].startswith("ER  T2  Rejected  ExecType=8 OrdStatus=8 ACME Buy 5")
    assert "reason=99" in lines[2] and "tick size" in lines[2]  # 18 is not FIX 4.4
    assert lines[3].startswith("ER  ")
    assert "Replaced  ExecType=5 OrdStatus=0 ACME Buy 50 @ 101.25  leaves=50" in lines[3]
    assert "orig=T1" in lines[3]
    assert "OrderStatus  ExecType=I OrdStatus=0 ACME Buy 50 @ 101.25" in lines[4]
    assert "Canceled  ExecType=4 OrdStatus=4" in lines[5]
    assert lines[6].startswith("MASSCXL  ") and "cancelled=1" in lines[6]
    assert lines[7].startswith("LOGOUT")
    assert len(lines) == 8, out

    # A second run without --reset picks up the venue's sequence numbers; --raw output.
    rc, out, err = await _run_client(gateway.port, "--sender", "CLIENT3", "--raw",
                                     "--timeout", "0.1", "status T1 symbol ACME")
    assert rc == 0, err
    assert "MsgSeqNum too low" in out and "logging on again" in err
    assert any(line.startswith("8=FIX.4.4|") and "|35=8|" in line and "|150=I|" in line
               for line in out.splitlines()), out

    # Logon refused (unknown CompID): exit status 1.
    rc, out, err = await _run_client(gateway.port, "--sender", "NOBODY", "buy 1 ACME @ 1")
    assert rc == 1
    assert "logon refused" in err


async def test_client_answers_test_request_and_resend_request() -> None:
    """Against a scripted venue: TestRequest -> Heartbeat, ResendRequest -> GapFill."""
    from fix_gateway.client import ClientOptions, run_client
    from fix_gateway.codec import Decoder, encode

    received: list[Message] = []

    async def venue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = Decoder()
        seq = 0

        def send(msg_type: str, *body: tuple[int, FieldValue]) -> None:
            nonlocal seq
            seq += 1
            writer.write(encode([(35, msg_type), (34, seq), (49, "FIXGW"),
                                 (52, format_timestamp(time.time())), (56, "CLIENT1"), *body]))

        while True:
            data = await reader.read(65536)
            if not data:
                break
            for msg in decoder.feed(data)[0]:
                assert isinstance(msg, Message)
                received.append(msg)
                if msg.msg_type == b"A":
                    send("A", (98, 0), (108, 30))
                    send("1", (112, "PING"))
                    send("2", (7, 2), (16, 0))
                elif msg.msg_type == b"5":
                    send("5")
                    await writer.drain()
                    writer.close()
                    return
            await writer.drain()

    server = await asyncio.start_server(venue, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    out, err = io.StringIO(), io.StringIO()
    options = ClientOptions(port=port, timeout=0.3, output="text")
    try:
        rc = await asyncio.to_thread(run_client, options, ["wait 0.2"], None, out, err)
    finally:
        server.close()
    assert rc == 0, err.getvalue()
    types = [m.msg_type for m in received]
    assert types == [b"A", b"0", b"4", b"5"], received
    heartbeat, gap_fill = received[1], received[2]
    assert heartbeat.get(112) == b"PING" and heartbeat.get(34) == b"2"
    assert (gap_fill.get(34), gap_fill.get(123), gap_fill.get(36), gap_fill.get(43)) == (
        b"2", b"Y", b"3", b"Y")  # messages 2.. are skipped up to our next, 3
    assert gap_fill.get(122) is not None
    assert received[3].get(34) == b"3"
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["LOGON  seq=1 heartbeat=30", "TESTREQUEST  seq=2 testreqid=PING",
                         "RESENDREQUEST  seq=3 begin=2 end=0"]
    assert lines[3] == "LOGOUT  seq=4"
