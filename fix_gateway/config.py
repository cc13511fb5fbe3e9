"""Gateway configuration: one pydantic-settings tree.

Sources, strongest first: FIXGW_* environment variables (nested keys joined
with "__", e.g. FIXGW_LISTEN__PORT=9000), then the TOML file given to
`fixgw serve --config`, then the defaults below. Session keys use QuickFIX's
setting names (SenderCompID, ResetOnLogon, MaxLatency, ...); a [default]
table applies to every [[sessions]] entry unless the entry overrides it, like
QuickFIX's [DEFAULT] section. Unknown keys are errors, so a typo is caught
at start-up rather than silently ignored.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

from engine.types import Instrument, StpMode
from fix_gateway.dictionary import DEFAULT_DICTIONARY, ValidationPolicy
from fix_gateway.session.config import SessionConfig
from session_store import FsyncPolicy


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ListenSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(9878, ge=0, le=65535)


class StoreSettings(_Strict):
    data_dir: Path = Path("var/data")
    fsync: FsyncPolicy = Field(
        FsyncPolicy.INTERVAL,
        description="batch: fsync before answering; interval: every batch written to the OS"
        " before answering, fsync every fsync_interval on a background thread; none: never",
    )
    fsync_interval: float = Field(0.05, gt=0, description="seconds, for fsync = 'interval'")


class ServerSettings(_Strict):
    max_message_size: int = Field(65536, ge=256, le=16 * 1024 * 1024)
    logon_timeout: float = Field(5.0, gt=0, description="seconds a new connection has to log on")
    write_buffer_limit: int = Field(
        1024 * 1024, ge=4096, description="bytes queued for a peer before we stop reading from it"
    )
    slow_consumer_timeout: float = Field(
        30.0, gt=0, description="seconds a peer may leave its buffer full before it is cut off"
    )
    write_buffer_max: int = Field(
        8 * 1024 * 1024, ge=4096,
        description="bytes queued for a peer that is not reading beyond which it is cut off"
        " at once, timeout or not (other sessions' trades keep adding to it); it recovers"
        " everything by ResendRequest",
    )
    tick_interval: float = Field(0.1, gt=0, le=5)
    explain_refused_logon: bool = Field(
        True,
        description="send a Logout with a Text saying why before closing a refused Logon;"
        " false closes silently, as QuickFIX does and the FIX acceptance scripts expect",
    )
    application: Literal["orders", "echo", "reject"] = Field(
        "orders",
        description="orders: order entry into the matching engine; echo: the FIX"
        " acceptance-test application (echoes D and d); reject: BusinessMessageReject"
        " for every application message",
    )
    dictionary: Path = DEFAULT_DICTIONARY


class InstrumentSettings(_Strict):
    """A tradable symbol. Prices are decimal strings here, integer ticks inside."""

    symbol: str = Field(min_length=1, max_length=32)
    tick_size: Decimal = Field(Decimal("0.01"), gt=0)
    lot_size: int = Field(1, ge=1)
    band_low: Decimal | None = Field(None, description="lowest accepted price, if any")
    band_high: Decimal | None = Field(None, description="highest accepted price, if any")

    @model_validator(mode="after")
    def _band_on_tick(self) -> InstrumentSettings:
        for name in ("band_low", "band_high"):
            value = getattr(self, name)
            if value is not None and value % self.tick_size:
                raise ValueError(f"{name} {value} is not a multiple of tick_size {self.tick_size}")
        if self.band_low is not None and self.band_high is not None \
                and self.band_low > self.band_high:
            raise ValueError("band_low is greater than band_high")
        return self

    def to_instrument(self) -> Instrument:
        def ticks(value: Decimal | None) -> int | None:
            return None if value is None else int(value / self.tick_size)

        return Instrument(self.symbol, self.tick_size, self.lot_size, ticks(self.band_low),
                          ticks(self.band_high))


class EngineSettings(_Strict):
    stp_mode: Literal["cancel_resting", "cancel_incoming", "cancel_both"] = Field(
        "cancel_resting", description="self-trade prevention between orders of one Account"
    )
    end_of_day: time = Field(time(21, 0), description="UTC time at which Day orders expire")

    @property
    def stp(self) -> StpMode:
        return StpMode[self.stp_mode.upper()]

    @property
    def end_of_day_ns(self) -> int:
        eod = self.end_of_day
        return ((eod.hour * 60 + eod.minute) * 60 + eod.second) * 10**9 + eod.microsecond * 1000


_EXAMPLE_INSTRUMENTS = [{"symbol": "ACME"}, {"symbol": "GLOBEX", "tick_size": "0.05"}]


class SessionSettings(_Strict):
    """One acceptor session, named as in QuickFIX's session settings."""

    sender_comp_id: str = Field(alias="SenderCompID", min_length=1)
    target_comp_id: str = Field(alias="TargetCompID", min_length=1)
    begin_string: Literal["FIX.4.4"] = Field("FIX.4.4", alias="BeginString")
    username: str | None = Field(None, alias="Username")
    password: str | None = Field(None, alias="Password")
    min_heartbeat: int = Field(1, alias="MinHeartBtInt", ge=0)
    max_heartbeat: int = Field(300, alias="MaxHeartBtInt", ge=1)
    reset_on_logon: bool = Field(False, alias="ResetOnLogon")
    reset_on_logout: bool = Field(False, alias="ResetOnLogout")
    reset_on_disconnect: bool = Field(False, alias="ResetOnDisconnect")
    check_comp_id: bool = Field(True, alias="CheckCompID")
    check_latency: bool = Field(True, alias="CheckLatency")
    max_latency: float = Field(120.0, alias="MaxLatency", gt=0)
    validate_user_defined_fields: bool = Field(True, alias="ValidateUserDefinedFields")
    validate_fields_out_of_order: bool = Field(True, alias="ValidateFieldsOutOfOrder")
    validate_fields_have_values: bool = Field(True, alias="ValidateFieldsHaveValues")
    logout_timeout: float = Field(2.0, alias="LogoutTimeout", gt=0)

    @model_validator(mode="after")
    def _heartbeat_bounds(self) -> SessionSettings:
        if self.min_heartbeat > self.max_heartbeat:
            raise ValueError("MinHeartBtInt is greater than MaxHeartBtInt")
        return self

    def to_config(self) -> SessionConfig:
        return SessionConfig(
            sender_comp_id=self.sender_comp_id,
            target_comp_id=self.target_comp_id,
            begin_string=self.begin_string,
            username=self.username,
            password=self.password,
            heartbeat_min=self.min_heartbeat,
            heartbeat_max=self.max_heartbeat,
            reset_on_logon=self.reset_on_logon,
            reset_on_logout=self.reset_on_logout,
            reset_on_disconnect=self.reset_on_disconnect,
            check_comp_id=self.check_comp_id,
            check_latency=self.check_latency,
            max_latency=self.max_latency,
            validation=ValidationPolicy(
                user_defined_fields=self.validate_user_defined_fields,
                fields_out_of_order=self.validate_fields_out_of_order,
                fields_have_values=self.validate_fields_have_values,
            ),
            logout_timeout=self.logout_timeout,
        )


_EXAMPLE_SESSION = {"SenderCompID": "FIXGW", "TargetCompID": "CLIENT1"}


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FIXGW_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    listen: ListenSettings = ListenSettings()
    store: StoreSettings = StoreSettings()
    server: ServerSettings = ServerSettings()
    engine: EngineSettings = EngineSettings()
    instruments: list[InstrumentSettings] = Field(
        default_factory=lambda: [InstrumentSettings.model_validate(i) for i in _EXAMPLE_INSTRUMENTS]
    )
    default: dict[str, Any] = Field(default_factory=dict)
    sessions: list[SessionSettings] = Field(
        default_factory=lambda: [SessionSettings.model_validate(_EXAMPLE_SESSION)]
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("default"), dict):
            defaults = data["default"]
            sessions = data.get("sessions")
            if isinstance(sessions, list):
                data = {**data, "sessions": [
                    {**defaults, **s} if isinstance(s, dict) else s for s in sessions
                ]}
        return data

    @model_validator(mode="after")
    def _unique_symbols(self) -> GatewaySettings:
        symbols = [i.symbol for i in self.instruments]
        duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
        if duplicates:
            raise ValueError(f"instruments: duplicate symbol {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _unique_sessions(self) -> GatewaySettings:
        seen: set[tuple[str, str]] = set()
        for i, s in enumerate(self.sessions):
            key = (s.sender_comp_id, s.target_comp_id)
            if key in seen:
                raise ValueError(f"sessions[{i}]: duplicate session {key[0]}->{key[1]}")
            seen.add(key)
        return self


class ConfigError(Exception):
    """Configuration that cannot start the gateway; the message names the key."""


def load_settings(path: str | Path | None = None) -> GatewaySettings:
    """Read settings from `path` (TOML) and FIXGW_* variables; raise ConfigError."""
    toml_path = Path(path) if path is not None else None
    if toml_path is not None and not toml_path.is_file():
        raise ConfigError(f"config file not found: {toml_path}")

    class _FromFile(GatewaySettings):
        @classmethod
        def settings_customise_sources(  # type: ignore[override]
            cls, settings_cls: type[BaseSettings], init_settings: Any, env_settings: Any,
            dotenv_settings: Any, file_secret_settings: Any,
        ) -> tuple[Any, ...]:
            sources: list[Any] = [init_settings, env_settings]
            if toml_path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
            return tuple(sources)

    try:
        return _FromFile()
    except ValidationError as exc:
        raise ConfigError(_describe(exc, toml_path)) from None
    except ValueError as exc:  # TOML syntax errors
        raise ConfigError(f"{toml_path}: {exc}") from None


def _describe(exc: ValidationError, path: Path | None) -> str:
    where = f"{path}: " if path else ""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{where}invalid configuration key '{key}': {err['msg']}")
    return "\n".join(lines)
