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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

from engine.types import MAX_ORDER_QTY, Instrument, StpMode
from fix_gateway import auth
from fix_gateway.dictionary import DEFAULT_DICTIONARY, ValidationPolicy
from fix_gateway.session.config import SessionConfig
from session_store import FsyncPolicy
from surveillance.settings import SurveillanceSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def wire_text(value: str) -> str:
    """An identifier that goes into FIX messages as it is: printable ASCII. An SOH
    would break the framing of every message carrying it, and a non-ASCII name
    would depend on an encoding the peer may not share."""
    if not (value.isascii() and value.isprintable()):
        raise ValueError("must be printable ASCII (no SOH or other control character)")
    return value


class ListenSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(9878, ge=0, le=65535)


class TlsSettings(_Strict):
    """A second, TLS listener next to [listen] (which stays plain)."""

    enabled: bool = False
    host: str | None = Field(None, description="default: listen.host")
    port: int = Field(9880, ge=0, le=65535)
    cert_file: FilePath | None = Field(None, description="server certificate chain, PEM")
    key_file: FilePath | None = Field(None, description="its private key, PEM")
    ca_file: FilePath | None = Field(None, description="CA(s) that sign client certificates")
    verify_client: Literal["none", "optional", "required"] = "none"

    @model_validator(mode="after")
    def _files_when_enabled(self) -> TlsSettings:
        if self.enabled and (self.cert_file is None or self.key_file is None):
            raise ValueError("cert_file and key_file are required when enabled")
        if self.verify_client != "none" and self.ca_file is None:
            raise ValueError(f"ca_file is required for verify_client = '{self.verify_client}'")
        return self


class SecuritySettings(_Strict):
    """Slowing down repeated failed Logons from one source address to one session."""

    max_logon_failures: int = Field(5, ge=0, description="refusals within the window that"
                                    " lock the address out of that session; 0: never")
    logon_failure_window: float = Field(60.0, gt=0, description="seconds")
    lockout: float = Field(10.0, gt=0, description="seconds of the first lockout; doubles")
    lockout_max: float = Field(600.0, gt=0, description="longest lockout, seconds")


class StoreSettings(_Strict):
    data_dir: Path = Path("var/data")
    fsync: FsyncPolicy = Field(
        FsyncPolicy.INTERVAL,
        description="batch: fsync before answering; interval: every batch written to the OS"
        " before answering, fsync every fsync_interval on a background thread; none: never",
    )
    fsync_interval: float = Field(0.05, gt=0, description="seconds, for fsync = 'interval'")
    record_inbound: bool = Field(
        True, description="keep every received message in the session store, for fixgw replay"
    )


class ServerSettings(_Strict):
    max_message_size: int = Field(65536, ge=256, le=16 * 1024 * 1024)
    max_messages_per_read: int = Field(
        64, ge=1,
        description="messages of one connection acted on in one turn of the event loop;"
        " a read that holds more is worked through over several turns, in order, the other"
        " connections served in between (nothing more is read from it meanwhile); each turn"
        " is committed and answered, so it also bounds how long one turn holds the loop and"
        " how long the first order of a big read waits for its ack",
    )
    listen_backlog: int = Field(
        1024, ge=1, le=65535,
        description="connections the kernel queues for the listeners (plain and TLS) before"
        " the gateway accepts them; beyond it a connect is not answered until there is"
        " room (the kernel caps it at net.core.somaxconn)",
    )
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
    stall_seconds: float = Field(
        2.0, ge=0,
        description="the event loop held up this long (a disk that stops answering, a long"
        " pause) writes every thread's stack to <store.data_dir>/stalls.log while it lasts"
        " and logs event=loop_stalled when it ends; 0: off",
    )
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


class MetricsSettings(_Strict):
    """Prometheus /metrics and /healthz over HTTP (docs/operations.md, "Metrics and health")."""

    enabled: bool = Field(True, description="serve /metrics and /healthz, count per batch")
    host: str = "127.0.0.1"
    port: int = Field(9879, ge=0, le=65535, description="0: any free port (logged at start)")


class LoggingSettings(_Strict):
    """Event logs and per-session FIX message logs (docs/operations.md, "Logs")."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = Field(
        None, description="defaults to the top-level log_level (kept for older configs)")
    format: Literal["kv", "json"] = Field("kv", description="kv: key=value; json: one object")
    file: Path | None = Field(None, description="log to this file (rotated) instead of stderr")
    max_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="rotate the log file here")
    backups: int = Field(5, ge=0, description="rotated log files kept")
    messages: bool = Field(True, description="write per-session FIX message logs")
    messages_dir: Path | None = Field(None, description="default: <store.data_dir>/logs")
    messages_max_bytes: int = Field(100 * 1024 * 1024, ge=1024,
                                    description="rotate a session's message log here")
    messages_backups: int = Field(10, ge=0, description="rotated message logs kept per session")


class InstrumentSettings(_Strict):
    """A tradable symbol. Prices are decimal strings here, integer ticks inside."""

    symbol: str = Field(min_length=1, max_length=32)

    _wire_text = field_validator("symbol")(wire_text)
    tick_size: Decimal = Field(Decimal("0.01"), gt=0)
    lot_size: int = Field(1, ge=1)
    band_low: Decimal | None = Field(
        None, description="lowest accepted price; without it, prices must be positive")
    band_high: Decimal | None = Field(None, description="highest accepted price, if any")
    max_qty: int = Field(1_000_000_000, ge=1, le=MAX_ORDER_QTY,
                         description="largest order quantity accepted (a fat-finger limit)")

    @model_validator(mode="after")
    def _band_on_tick(self) -> InstrumentSettings:
        for name in ("band_low", "band_high"):
            value = getattr(self, name)
            if value is not None and value % self.tick_size:
                raise ValueError(f"{name} {value} is not a multiple of tick_size {self.tick_size}")
        if self.band_low is not None and self.band_high is not None \
                and self.band_low > self.band_high:
            raise ValueError("band_low is greater than band_high")
        if self.max_qty < self.lot_size:
            raise ValueError(f"max_qty {self.max_qty} is below lot_size {self.lot_size}")
        return self

    def to_instrument(self) -> Instrument:
        def ticks(value: Decimal | None) -> int | None:
            return None if value is None else int(value / self.tick_size)

        return Instrument(self.symbol, self.tick_size, self.lot_size, ticks(self.band_low),
                          ticks(self.band_high), self.max_qty)


class EngineSettings(_Strict):
    stp_mode: Literal["cancel_resting", "cancel_incoming", "cancel_both"] = Field(
        "cancel_resting", description="self-trade prevention between orders of one Account"
    )
    end_of_day: time = Field(time(21, 0), description="UTC time at which Day orders expire")
    max_iceberg_slices: int = Field(
        1000, ge=1, description="most slices an iceberg order may have: MaxFloor(111) must be"
        " at least OrderQty / this, or the order is rejected (150=8, 103=99). Each slice is a"
        " fill when the order is swept, so this bounds the work of one incoming order",
    )
    snapshots: bool = Field(
        True, description="snapshot the engine after each end of day, at stop and after a "
        "start that replayed commands, archiving the journal: a start then replays only what "
        "came after the last snapshot",
    )
    archives_kept: int = Field(
        0, ge=0, description="archived journals kept once the snapshot covers them, newest"
        " first; older ones are deleted after each snapshot. 0: keep them all (the complete"
        " command history, which fixgw surveil reads)",
    )

    @property
    def stp(self) -> StpMode:
        return StpMode[self.stp_mode.upper()]

    @property
    def end_of_day_ns(self) -> int:
        eod = self.end_of_day
        return ((eod.hour * 60 + eod.minute) * 60 + eod.second) * 10**9 + eod.microsecond * 1000


_EXAMPLE_INSTRUMENTS = [{"symbol": "ACME"}, {"symbol": "GLOBEX", "tick_size": "0.05"}]


class MqttSettings(_Strict):
    """The drop-copy MQTT feed: every copy as JSON, QoS 1."""

    enabled: bool = False
    host: str = Field("", description="broker host; empty: run the embedded broker (amqtt)")
    port: int = Field(1883, ge=1, le=65535)
    embedded_host: str = Field("127.0.0.1", description="where the embedded broker listens")
    embedded_port: int = Field(1883, ge=1, le=65535)
    tls: bool = False
    ca_file: Path | None = Field(None, description="CA bundle for TLS; default: system CAs")
    username: str | None = None
    password: str | None = None
    client_id: str = "fixgw-dropcopy"
    topic_prefix: str = Field("fixgw", min_length=1)
    in_process: bool = Field(
        True, description="publish from a thread of the gateway; false: run"
        " `fixgw dropcopy publish` as its own process",
    )
    keepalive: int = Field(30, ge=5)
    reconnect_max: float = Field(10.0, gt=0, description="longest reconnect backoff, seconds")


class DropCopySettings(_Strict):
    enabled: bool = Field(
        True, description="keep the drop-copy stream (every ExecutionReport, sequence-numbered)"
    )
    mqtt: MqttSettings = MqttSettings()


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
    role: Literal["order-entry", "drop-copy"] = Field("order-entry", alias="Role")
    drop_copy_sessions: list[str] = Field(
        default_factory=list, alias="DropCopySessions",
        description="drop-copy role: order-entry sessions covered, by name (SENDER-TARGET)"
        " or TargetCompID; empty: all",
    )
    drop_copy_accounts: list[str] = Field(
        default_factory=list, alias="DropCopyAccounts",
        description="drop-copy role: only reports for these Accounts (1); empty: all",
    )
    drop_copy_delivery: Literal["day", "live"] = Field(
        "day", alias="DropCopyDelivery",
        description="drop-copy role: copies made while offline are delivered at logon (day:"
        " since the last copy received, or since 00:00 UTC for a new consumer) or not (live)",
    )
    password_hash: str | None = Field(None, alias="PasswordHash")
    allowed_addresses: list[str] = Field(default_factory=list, alias="AllowedAddresses")
    throttle_messages: int = Field(0, alias="ThrottleMessages", ge=0)
    throttle_interval: float = Field(1.0, alias="ThrottleInterval", gt=0)
    throttle_action: Literal["reject", "logout"] = Field("reject", alias="ThrottleAction")
    throttle_logout_multiple: float = Field(0.0, alias="ThrottleLogoutMultiple", ge=0)
    max_open_orders: int | None = Field(None, alias="MaxOpenOrders", ge=0)
    max_queued_bytes: int = Field(
        8 * 1024 * 1024, alias="MaxQueuedBytes", ge=1024,
        description="bytes of messages received past a sequence gap, held until the gap is"
        " filled; past it the session is logged out (Text says why) and the client resends"
        " after logging on again",
    )

    @model_validator(mode="after")
    def _heartbeat_bounds(self) -> SessionSettings:
        if self.min_heartbeat > self.max_heartbeat:
            raise ValueError("MinHeartBtInt is greater than MaxHeartBtInt")
        return self

    _wire_text = field_validator("sender_comp_id", "target_comp_id")(wire_text)

    @field_validator("password_hash")
    @classmethod
    def _hash_format(cls, value: str | None) -> str | None:
        if value is not None:
            auth.parse_password_hash(value)
        return value

    @field_validator("allowed_addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        auth.parse_networks(value)
        return value

    @model_validator(mode="after")
    def _one_password(self) -> SessionSettings:
        if self.password is not None and self.password_hash is not None:
            raise ValueError("set Password or PasswordHash, not both")
        if self.throttle_logout_multiple and self.throttle_logout_multiple <= 1:
            raise ValueError("ThrottleLogoutMultiple must be above 1 (or 0: never)")
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
            password_hash=self.password_hash,
            allowed_addresses=auth.parse_networks(self.allowed_addresses),
            throttle_messages=self.throttle_messages,
            throttle_interval=self.throttle_interval,
            throttle_action=self.throttle_action,
            throttle_logout_multiple=self.throttle_logout_multiple,
            max_open_orders=self.max_open_orders,
            max_queued_bytes=self.max_queued_bytes,
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
    tls: TlsSettings = TlsSettings()
    security: SecuritySettings = SecuritySettings()
    store: StoreSettings = StoreSettings()
    server: ServerSettings = ServerSettings()
    engine: EngineSettings = EngineSettings()
    drop_copy: DropCopySettings = DropCopySettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    surveillance: SurveillanceSettings = SurveillanceSettings()
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

    def with_data_dir(self, data_dir: Path | None) -> GatewaySettings:
        """These settings with `store.data_dir` replaced (a --data-dir option), if given."""
        if data_dir is None:
            return self
        return self.model_copy(update={"store": self.store.model_copy(
            update={"data_dir": data_dir})})

    @model_validator(mode="after")
    def _drop_copy_targets(self) -> GatewaySettings:
        order_entry = {(s.sender_comp_id, s.target_comp_id) for s in self.sessions
                       if s.role == "order-entry"}
        names = {f"{a}-{b}" for a, b in order_entry} | {b for _, b in order_entry}
        for i, s in enumerate(self.sessions):
            for name in s.drop_copy_sessions:
                if name not in names:
                    raise ValueError(f"sessions[{i}].DropCopySessions: {name!r} is not an"
                                     " order-entry session")
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
        def settings_customise_sources(
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
