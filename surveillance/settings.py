"""The `[surveillance]` settings section: detector thresholds and the live monitor.

Integers wherever a threshold decides an alert (basis points, percent, counts),
so the MLX and NumPy detectors compare exactly the same numbers.
"""

from __future__ import annotations

from datetime import time

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderToTradeSettings(_Strict):
    window_s: int = Field(60, ge=1, description="rolling window length, seconds")
    step_s: int = Field(10, ge=1, description="window step (bucket), seconds; divides window_s")
    max_ratio: int = Field(50, ge=1, description="alert when orders > max_ratio * max(trades, 1)")
    min_orders: int = Field(200, ge=1, description="no alert below this many order messages")

    @model_validator(mode="after")
    def _step_divides(self) -> OrderToTradeSettings:
        if self.window_s % self.step_s:
            raise ValueError("window_s must be a multiple of step_s")
        return self


class MessageBurstSettings(_Strict):
    max_per_second: int = Field(200, ge=1, description="alert above this many messages/s")
    baseline_s: int = Field(60, ge=1, description="seconds of the account's own baseline")
    baseline_multiple: int = Field(
        10, ge=1, description="alert above this multiple of the baseline rate (at least 1/s)"
    )
    min_messages: int = Field(50, ge=1, description="no baseline alert below this many/s")
    min_history_s: int = Field(
        30, ge=1, description="no baseline alert until the account's messages in the baseline"
        " window go back this far (max_per_second applies from the first second)"
    )

    @model_validator(mode="after")
    def _history_fits_baseline(self) -> MessageBurstSettings:
        if self.min_history_s >= self.baseline_s:
            raise ValueError("min_history_s must be less than baseline_s")
        return self


class SpoofingSettings(_Strict):
    window_s: int = Field(5, ge=1, description="a fill and the opposite cancels within this")
    qty_ratio: int = Field(5, ge=1, description="cancelled qty >= qty_ratio * filled qty")
    min_cancel_qty: int = Field(1000, ge=1, description="large: cancelled qty at least this")
    min_levels: int = Field(3, ge=2, description="layered: cancels at this many price levels")
    min_layered_qty: int = Field(500, ge=1, description="layered: cancelled qty at least this")


class PriceMoveSettings(_Strict):
    move_bps: int = Field(50, ge=1, description="an aggressive order moves last price this much")
    close_time: time = Field(time(21, 0), description="UTC closing time (marking the close)")
    close_window_s: int = Field(300, ge=1, description="seconds before close_time watched")
    reversal_window_s: int = Field(60, ge=1, description="seconds in which a reversal counts")
    reversal_pct: int = Field(50, ge=1, le=100, description="share of the move given back, %")

    @property
    def close_ns(self) -> int:
        t = self.close_time
        return ((t.hour * 60 + t.minute) * 60 + t.second) * 10**9 + t.microsecond * 1000


class SurveillanceSettings(_Strict):
    enabled: bool = True
    interval: float = Field(1.0, gt=0, description="seconds between live evaluations")
    backend: str = Field("mlx", pattern="^(mlx|numpy)$", description="mlx or numpy")
    worker: str = Field("process", pattern="^(process|thread)$",
                        description="live detectors in their own process or a thread")
    retention_s: int = Field(
        90, ge=10, description="seconds of rows the live monitor keeps (it evaluates only"
        " the windows new rows can touch)"
    )
    beneficial_owners: dict[str, list[str]] = Field(
        default_factory=dict,
        description="group name -> accounts with one beneficial owner (wash trades)",
    )
    order_to_trade: OrderToTradeSettings = OrderToTradeSettings()
    message_burst: MessageBurstSettings = MessageBurstSettings()
    spoofing: SpoofingSettings = SpoofingSettings()
    price_move: PriceMoveSettings = PriceMoveSettings()

    @property
    def longest_window_s(self) -> int:
        return max(self.order_to_trade.window_s, self.message_burst.baseline_s,
                   self.price_move.reversal_window_s, 2 * self.spoofing.window_s)

    @model_validator(mode="after")
    def _retention_covers_windows(self) -> SurveillanceSettings:
        need = self.longest_window_s + max(10, int(5 * self.interval))
        if self.retention_s < need:
            raise ValueError(f"retention_s must be at least {need} (the longest detector"
                             " window plus five intervals)")
        return self
