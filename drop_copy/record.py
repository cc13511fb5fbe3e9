"""The JSON form of one drop copy, as published on MQTT and printed by replay.

Schema (validated by `DropCopyRecord`):

    {"seq": 42,                         drop-copy sequence number: 1, 2, 3, ... no gaps
     "session": "FIXGW-CLIENT1",        the order-entry session the report was sent on
     "sender_comp_id": "FIXGW", "target_comp_id": "CLIENT1",
     "symbol": "ACME", "account": "ACC1" | null,
     "msg_seq_num": 17,                 the report's MsgSeqNum on its session
     "fields": {"OrderID": "3", "ClOrdID": "o1", "ExecType": "F", ...},
     "raw": "8=FIX.4.4\\u00019=..."}    the report exactly as sent (SOH separators)

`fields` holds every field of the ExecutionReport by its FIX 4.4 name except
BeginString, BodyLength and CheckSum; a tag the dictionary does not name
appears as its number.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fix_gateway.codec import parse_fields
from fix_gateway.dictionary import Dictionary

_FRAMING = (8, 9, 10)


class DropCopyRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=1)
    session: str
    sender_comp_id: str
    target_comp_id: str
    symbol: str | None
    account: str | None
    msg_seq_num: int
    fields: dict[str, str]
    raw: str

    @classmethod
    def from_report(cls, seq: int, raw: bytes, dictionary: Dictionary) -> DropCopyRecord:
        return cls.model_validate(record_dict(seq, raw, field_names(dictionary)))


def field_names(dictionary: Dictionary) -> dict[int, str]:
    """Tag -> FIX field name, for `record_dict`."""
    return {tag: f.name for tag, f in dictionary.fields.items()}


def record_dict(seq: int, raw: bytes, names: dict[int, str]) -> dict[str, Any]:
    """The record as plain JSON-ready values (the publisher's fast path: it skips
    model validation, the tests check its output against `DropCopyRecord`)."""
    parsed = parse_fields(raw)
    if parsed is None:
        raise ValueError(f"drop-copy entry {seq} is not a FIX message")
    tags, values = parsed
    fields = {names.get(tag) or str(tag): value.decode("latin-1")
              for tag, value in zip(tags, values, strict=True) if tag not in _FRAMING}
    sender = fields.get("SenderCompID", "")
    target = fields.get("TargetCompID", "")
    return {
        "seq": seq,
        "session": f"{sender}-{target}",
        "sender_comp_id": sender,
        "target_comp_id": target,
        "symbol": fields.get("Symbol"),
        "account": fields.get("Account"),
        "msg_seq_num": int(fields.get("MsgSeqNum", "0")),
        "fields": fields,
        "raw": raw.decode("latin-1"),
    }


def topic_for(prefix: str, record: DropCopyRecord | dict[str, Any]) -> str:
    """`{prefix}/dropcopy/{session}/{symbol}`; MQTT wildcards and '/' in names become '_'."""
    if isinstance(record, DropCopyRecord):
        session, symbol = record.session, record.symbol
    else:
        session, symbol = record["session"], record["symbol"]
    return f"{prefix}/dropcopy/{_level(session)}/{_level(symbol or '-')}"


def _level(name: str) -> str:
    return name.replace("/", "_").replace("+", "_").replace("#", "_") or "_"
