"""The gateway's FIX dictionary (QuickFIX XML format) and message validation.

`Dictionary.load(path)` reads specs/FIX44.xml; `Dictionary.validate(msg, policy)`
checks one parsed message in a single pass over its fields and returns the
first problem found as a `Problem` carrying the SessionRejectReason (373) the
FIX specification names for it, or None when the message is valid.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from fix_gateway.codec import Message, int_in_reach, parse_uint
from fix_gateway.utc_time import parse_timestamp

DEFAULT_DICTIONARY = Path(__file__).resolve().parent.parent / "specs" / "FIX44.xml"

# SessionRejectReason (373) values used here.
INVALID_TAG_NUMBER = 0
REQUIRED_TAG_MISSING = 1
TAG_NOT_DEFINED_FOR_MESSAGE = 2
UNDEFINED_TAG = 3
TAG_WITHOUT_VALUE = 4
VALUE_OUT_OF_RANGE = 5
INCORRECT_DATA_FORMAT = 6
COMPID_PROBLEM = 9
SENDING_TIME_ACCURACY = 10
INVALID_MSG_TYPE = 11
TAG_REPEATED = 13
TAG_OUT_OF_ORDER = 14
GROUP_FIELDS_OUT_OF_ORDER = 15
INCORRECT_NUM_IN_GROUP = 16

FIRST_USER_DEFINED_TAG = 5000

# Problems decided by the tag sequence alone, reported before any value problem.
_STRUCTURAL = frozenset((TAG_OUT_OF_ORDER, TAG_REPEATED, INVALID_MSG_TYPE, REQUIRED_TAG_MISSING))


class _Full(Enum):
    """The plan marker: this shape needs the full validation every time."""

    FULL = 0


# One field's checks in a plan: (index, tag, type check, enum values, multiple-valued,
# problem that does not depend on the value).
_FieldCheck = tuple[
    int, int, "Callable[[bytes], bool] | None", "frozenset[bytes] | None", bool, "Problem | None"
]
# (problem that needs no value, value checks without empty values, every field's checks)
_Plan = tuple["Problem | None", tuple[_FieldCheck, ...], tuple[_FieldCheck, ...]]


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a message is rejected: SessionRejectReason, the tag at fault, a text."""

    reason: int
    tag: int | None
    text: str


@dataclass(frozen=True, slots=True)
class ValidationPolicy:
    """QuickFIX-named switches for what validation enforces."""

    user_defined_fields: bool = True  # ValidateUserDefinedFields
    fields_out_of_order: bool = True  # ValidateFieldsOutOfOrder
    fields_have_values: bool = True  # ValidateFieldsHaveValues


@dataclass(frozen=True, slots=True)
class FieldDef:
    number: int
    name: str
    type: str
    enums: frozenset[bytes] | None = None


@dataclass(slots=True)
class FieldSet:
    """Members of a header, trailer, message or repeating group."""

    name: str
    members: dict[int, bool] = field(default_factory=dict)  # tag -> required
    groups: dict[int, FieldSet] = field(default_factory=dict)  # count tag -> group
    delimiter: int = 0  # groups only: the first field of each entry
    required: frozenset[int] = frozenset()
    positions: dict[int, int] = field(default_factory=dict)  # tag -> place in dictionary order


@dataclass(slots=True)
class MessageDef:
    name: str
    msg_type: bytes
    admin: bool
    body: FieldSet


_INT = re.compile(rb"-?\d+")
_UINT = re.compile(rb"\d+")
_DECIMAL = re.compile(rb"-?(?:\d+(?:\.\d*)?|\.\d+)")
_TIME_ONLY = re.compile(rb"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3})?")
_DATE_ONLY = re.compile(rb"\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")
_MONTH_YEAR = re.compile(rb"\d{4}(0[1-9]|1[0-2])((0[1-9]|[12]\d|3[01])|w[1-5])?")


# Each check tries the common shape with a C-level bytes method first. An integer
# with more significant digits than a 64-bit column holds fails its check too: no
# part of the gateway can use it (see `_bad_value` for the answer it gets).
def _is_int(v: bytes) -> bool:
    return (v.isdigit() or _INT.fullmatch(v) is not None) and int_in_reach(v)


def _is_uint(v: bytes) -> bool:
    return v.isdigit() and int_in_reach(v)


def _is_int_text(v: bytes) -> bool:
    return v.isdigit() or _INT.fullmatch(v) is not None


def _is_uint_text(v: bytes) -> bool:
    return v.isdigit()


def _is_decimal(v: bytes) -> bool:
    return v.replace(b".", b"", 1).isdigit() or _DECIMAL.fullmatch(v) is not None


def _is_char(v: bytes) -> bool:
    return len(v) == 1


def _is_bool(v: bytes) -> bool:
    return v in (b"Y", b"N")


def _is_timestamp(v: bytes) -> bool:
    return parse_timestamp(v) is not None


def _is_time_only(v: bytes) -> bool:
    return _TIME_ONLY.fullmatch(v) is not None


def _is_date_only(v: bytes) -> bool:
    return _DATE_ONLY.fullmatch(v) is not None


def _is_month_year(v: bytes) -> bool:
    return _MONTH_YEAR.fullmatch(v) is not None


_TYPE_CHECKS = {
    "INT": _is_int,
    "LENGTH": _is_uint,
    "SEQNUM": _is_uint,
    "NUMINGROUP": _is_uint_text,  # any length: a count no group matches is 373=16
    "TAGNUM": _is_uint,
    "DAYOFMONTH": _is_uint,
    "PRICE": _is_decimal,
    "PRICEOFFSET": _is_decimal,
    "QTY": _is_decimal,
    "AMT": _is_decimal,
    "FLOAT": _is_decimal,
    "PERCENTAGE": _is_decimal,
    "CHAR": _is_char,
    "BOOLEAN": _is_bool,
    "UTCTIMESTAMP": _is_timestamp,
    "UTCTIMEONLY": _is_time_only,
    "UTCDATEONLY": _is_date_only,
    "UTCDATE": _is_date_only,
    "LOCALMKTDATE": _is_date_only,
    "MONTHYEAR": _is_month_year,
}


# The shape alone of the integer types whose checks also bound the digits.
_INT_SHAPES = {"INT": _is_int_text, "LENGTH": _is_uint_text, "SEQNUM": _is_uint_text,
               "TAGNUM": _is_uint_text, "DAYOFMONTH": _is_uint_text}

_STRUCTURE_ONLY = ValidationPolicy(fields_have_values=False)


class Dictionary:
    """A loaded FIX dictionary: fields, header, trailer and messages."""

    def __init__(
        self,
        fields: dict[int, FieldDef],
        header: FieldSet,
        trailer: FieldSet,
        messages: dict[bytes, MessageDef],
        begin_string: bytes,
        enum_names: dict[int, dict[bytes, str]] | None = None,
    ) -> None:
        self.fields = fields
        # tag -> value -> the dictionary's description (54: b"1" -> "BUY"), for viewers.
        self.enum_names = enum_names or {}
        self.header = header
        self.trailer = trailer
        self.messages = messages
        self.begin_string = begin_string
        msg_type = fields.get(35)
        self.known_msg_types: frozenset[bytes] = (
            msg_type.enums if msg_type is not None and msg_type.enums else frozenset(messages)
        )
        self.field_by_name = {f.name: f for f in fields.values()}
        self._checks = {
            tag: _TYPE_CHECKS.get(f.type) for tag, f in fields.items() if f.type in _TYPE_CHECKS
        }
        self._int_shapes = {
            tag: _INT_SHAPES[f.type] for tag, f in fields.items() if f.type in _INT_SHAPES
        }
        self._plans: dict[ValidationPolicy, dict[tuple[bytes, Sequence[int]], _Plan | _Full]] = {}
        self._enums = {
            tag: (f.enums, f.type == "MULTIPLEVALUESTRING")
            for tag, f in fields.items()
            if f.enums and tag != 35
        }

    # --- loading -------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path = DEFAULT_DICTIONARY) -> Dictionary:
        root = ET.parse(path).getroot()
        begin = f"FIX.{root.get('major')}.{root.get('minor')}".encode()
        fields: dict[int, FieldDef] = {}
        by_name: dict[str, int] = {}
        enum_names: dict[int, dict[bytes, str]] = {}
        for node in _children(root, "fields"):
            number = int(node.get("number", "0"))
            enums = frozenset(v.get("enum", "").encode() for v in node.findall("value"))
            if enums:
                enum_names[number] = {v.get("enum", "").encode(): v.get("description", "")
                                      for v in node.findall("value")}
            fields[number] = FieldDef(number, node.get("name", ""), node.get("type", "STRING"),
                                      enums or None)
            by_name[node.get("name", "")] = number
        components = {c.get("name", ""): c for c in _children(root, "components")}
        builder = _SetBuilder(by_name, components)
        header = builder.build("header", root.find("header"))
        trailer = builder.build("trailer", root.find("trailer"))
        messages: dict[bytes, MessageDef] = {}
        for node in _children(root, "messages"):
            msg_type = node.get("msgtype", "").encode()
            body = builder.build(node.get("name", ""), node)
            messages[msg_type] = MessageDef(
                node.get("name", ""), msg_type, node.get("msgcat") == "admin", body
            )
        return cls(fields, header, trailer, messages, begin, enum_names)

    def tag_name(self, tag: int) -> str:
        f = self.fields.get(tag)
        return f.name if f else str(tag)

    def enum_name(self, tag: int, value: bytes) -> str | None:
        """The description of an enumerated value (Side 1 -> "BUY"), if the dictionary has one."""
        names = self.enum_names.get(tag)
        return names.get(value) if names else None

    def is_admin(self, msg_type: bytes) -> bool:
        mdef = self.messages.get(msg_type)
        return mdef.admin if mdef else False

    # --- validation ------------------------------------------------------------

    def validate(self, msg: Message, policy: ValidationPolicy) -> Problem | None:
        """The problem QuickFIX would report first for `msg`, or None.

        Everything but the values depends only on the sequence of tags, and a
        client sends the same few shapes over and over: each shape gets a
        plan once (structure and membership settled, the value checks listed
        in reporting order), and every later message of that shape runs just
        its value checks. Shapes with repeating groups take the full path.
        """
        plans = self._plans.get(policy)
        if plans is None:
            plans = self._plans[policy] = {}
        tags = msg.tags
        key = (msg.values[2], tags)
        plan = plans.get(key)
        if plan is None:
            plan = self._make_plan(msg, policy)
            if len(plans) >= 4096:
                plans.clear()
            plans[key] = plan
        if plan is _Full.FULL:
            return self._validate_full(msg, policy)
        first, typed, every = plan
        if first is not None:
            return first
        values = msg.values
        # An empty value may come first in reporting order: then check every field.
        checks = every if policy.fields_have_values and b"" in values else typed
        for i, tag, check, enum, multiple, static in checks:
            value = values[i]
            if not value:
                if policy.fields_have_values:
                    return Problem(TAG_WITHOUT_VALUE, tag, "Tag specified without a value")
            else:
                if check is not None and not check(value):
                    return self._bad_value(tag, value)
                if enum is not None and not (
                    all(v in enum for v in value.split(b" ")) if multiple else value in enum
                ):
                    return Problem(VALUE_OUT_OF_RANGE, tag,
                                   "Value is incorrect (out of range) for this tag")
            if static is not None:
                return static
        return None

    def _bad_value(self, tag: int, value: bytes) -> Problem:
        """A value that failed its type check: an integer too long for any use is
        well formed but out of range (373=5, as a NewSeqNo past the store's range);
        anything else is the wrong format (373=6)."""
        shape = self._int_shapes.get(tag)
        if shape is not None and shape(value):
            return Problem(VALUE_OUT_OF_RANGE, tag,
                           "Value is incorrect (out of range) for this tag")
        return Problem(INCORRECT_DATA_FORMAT, tag, "Incorrect data format for value")

    def _make_plan(self, msg: Message, policy: ValidationPolicy) -> _Plan | _Full:
        """(problem that needs no value, value checks) for a tag sequence, or _Full.FULL."""
        tags = msg.tags
        msg_type = msg.values[2]
        mdef = self.messages.get(msg_type)
        if mdef is not None and any(
            tag in mdef.body.groups or tag in self.header.groups or tag in self.trailer.groups
            for tag in tags
        ):
            return _Full.FULL
        # Run the full validation on a stand-in whose values are all valid-looking
        # placeholders, to learn the value-independent outcome for this shape.
        stand_in = [*msg.values[:3], *([b"\x00"] * (len(tags) - 3))]
        structural = self._validate_full(Message(tags, stand_in), _STRUCTURE_ONLY)
        if structural is not None and structural.reason in _STRUCTURAL:
            return (structural, (), ())
        if mdef is None:
            return (None, (), ())
        header, trailer, body = self.header, self.trailer, mdef.body
        entries = []
        for i, tag in enumerate(tags):
            if tag in header.members:
                owner, rank = header, 0
            elif tag in trailer.members:
                owner, rank = trailer, 1
            else:
                owner, rank = body, 2
            static = self._static_problem(tag, owner, policy)
            enum = self._enums.get(tag)
            entries.append((
                (rank, tag), i, tag, self._checks.get(tag),
                enum[0] if enum else None, enum[1] if enum else False, static,
            ))
        entries.sort(key=lambda e: e[0])
        every = tuple(e[1:] for e in entries)
        # Without empty values only fields with something to check matter.
        typed = tuple(e for e in every if e[2] is not None or e[3] is not None or e[5] is not None)
        return (None, typed, every)

    def _static_problem(
        self, tag: int, owner: FieldSet, policy: ValidationPolicy
    ) -> Problem | None:
        """A field's problem that does not depend on its value (after value checks)."""
        if tag <= 0:
            return Problem(INVALID_TAG_NUMBER, tag, "Invalid tag number")
        if tag in owner.members:
            return None
        if tag in self.fields:
            return Problem(TAG_NOT_DEFINED_FOR_MESSAGE, tag,
                           "Tag not defined for this message type")
        if tag >= FIRST_USER_DEFINED_TAG and not policy.user_defined_fields:
            return None
        return Problem(INVALID_TAG_NUMBER, tag, "Invalid tag number")

    def _validate_full(self, msg: Message, policy: ValidationPolicy) -> Problem | None:
        """The problem QuickFIX would report first for `msg`, or None (any shape).

        Order: structure (header/body/trailer order 14, repeated tag 13),
        MsgType (11), required fields (1, lowest tag of header, body, then
        trailer), then per-field problems (4, 6, 5, 0, 2, 16) for the lowest
        tag of the header, then trailer, then body.
        """
        tags, values = msg.tags, msg.values
        msg_type = values[2]
        if msg_type not in self.known_msg_types:
            return Problem(INVALID_MSG_TYPE, None, "Invalid MsgType")
        mdef = self.messages.get(msg_type)
        if mdef is None:
            return None  # valid but unsupported: the session answers BusinessMessageReject
        header, trailer, body = self.header, self.trailer, mdef.body
        n = len(tags)
        seen: set[int] = set()
        section = 0  # 0 header, 1 body, 2 trailer
        worst: tuple[int, int, Problem] | None = None  # (section rank, tag, problem)
        i = 0
        while i < n:
            tag = tags[i]
            if tag in header.members:
                owner, rank = header, 0
                if section and policy.fields_out_of_order:
                    return Problem(TAG_OUT_OF_ORDER, tag, "Tag specified out of required order")
            elif tag in trailer.members:
                owner, rank, section = trailer, 1, 2
            else:
                owner, rank = body, 2
                if section == 2 and policy.fields_out_of_order:
                    return Problem(TAG_OUT_OF_ORDER, tag, "Tag specified out of required order")
                section = 1
            if tag in seen:
                return Problem(TAG_REPEATED, tag, "Tag appears more than once")
            seen.add(tag)
            if worst is None or (rank, tag) < (worst[0], worst[1]):
                problem = self._field_problem(tag, values[i], owner, policy)
                if problem is not None:
                    worst = (rank, tag, problem)
            group = owner.groups.get(tag)
            if group is not None and values[i].isdigit():
                i, problem = self._check_group(tags, values, i, group, policy)
                if problem is not None and problem.reason == GROUP_FIELDS_OUT_OF_ORDER:
                    return problem  # found while parsing, as QuickFIX/J does: before all else
                if problem is not None and (worst is None or (rank, tag) < (worst[0], worst[1])):
                    worst = (rank, tag, problem)
            else:
                i += 1
        for fs in (header, body, trailer):
            missing = fs.required - seen
            if missing:
                return Problem(REQUIRED_TAG_MISSING, min(missing), "Required tag missing")
        return worst[2] if worst is not None else None

    def _field_problem(
        self, tag: int, value: bytes, owner: FieldSet, policy: ValidationPolicy
    ) -> Problem | None:
        """Checks in QuickFIX's order: value present, format, enum, known, allowed."""
        if not value and policy.fields_have_values:
            return Problem(TAG_WITHOUT_VALUE, tag, "Tag specified without a value")
        if value:
            check = self._checks.get(tag)
            if check is not None and not check(value):
                return self._bad_value(tag, value)
            enum = self._enums.get(tag)
            if enum is not None:
                allowed, multiple = enum
                ok = all(v in allowed for v in value.split(b" ")) if multiple else value in allowed
                if not ok:
                    return Problem(VALUE_OUT_OF_RANGE, tag,
                                   "Value is incorrect (out of range) for this tag")
        return self._static_problem(tag, owner, policy)

    def _check_group(
        self, tags: Sequence[int], values: list[bytes], i: int, group: FieldSet,
        policy: ValidationPolicy,
    ) -> tuple[int, Problem | None]:
        """Check the group whose count field is at `i`; return the index after it.

        Parsed the way QuickFIX/J parses it: an entry starts at the delimiter,
        its members must follow the dictionary's order, and a member or nested
        group before any delimiter is out of order (15) at parse time, so it
        wins over every value problem; the caller returns it at once.
        """
        count_tag = tags[i]
        declared = parse_uint(values[i])  # None: too long for any group to match
        n = len(tags)
        i += 1
        entries = 0
        first: Problem | None = None
        previous = -1  # dictionary position of the entry's last member
        entry_seen: set[int] = set()
        while i < n:
            tag = tags[i]
            if tag == group.delimiter:
                entries += 1
                previous = 0
                if entries > 1:
                    first = first or self._entry_missing(group, entry_seen)
                entry_seen = set()
            elif tag not in group.members:
                break  # the group ends; the field belongs to its parent
            elif entries == 0:
                return i, self._missing_delimiter(group, count_tag, tag)
            elif tag not in group.groups or tag in entry_seen:
                position = group.positions[tag]
                if position <= previous:
                    return i, Problem(GROUP_FIELDS_OUT_OF_ORDER, tag,
                                      "Out of order repeating group members")
                previous = position
            entry_seen.add(tag)
            if first is None:
                first = self._field_problem(tag, values[i], group, policy)
            nested = group.groups.get(tag)
            if nested is not None and values[i].isdigit():
                i, problem = self._check_group(tags, values, i, nested, policy)
                if problem is not None and problem.reason == GROUP_FIELDS_OUT_OF_ORDER:
                    return i, problem
                first = first or problem
            else:
                i += 1
        if entries:
            first = first or self._entry_missing(group, entry_seen)
        if entries != declared:
            return i, Problem(INCORRECT_NUM_IN_GROUP, count_tag,
                              "Incorrect NumInGroup count for repeating group")
        return i, first

    @staticmethod
    def _entry_missing(group: FieldSet, entry_seen: set[int]) -> Problem | None:
        missing = group.required - entry_seen
        if not missing:
            return None
        return Problem(REQUIRED_TAG_MISSING, min(missing), "Required tag missing")

    def _missing_delimiter(self, group: FieldSet, count_tag: int, tag: int) -> Problem:
        delimiter = group.delimiter
        return Problem(
            GROUP_FIELDS_OUT_OF_ORDER, tag,
            f"The group {group.name} ({count_tag}) must begin with its delimiter field "
            f"{self.tag_name(delimiter)} ({delimiter})",
        )


def _children(root: ET.Element, name: str) -> list[ET.Element]:
    node = root.find(name)
    return list(node) if node is not None else []


class _SetBuilder:
    """Builds FieldSets from XML, inlining components."""

    def __init__(self, by_name: dict[str, int], components: dict[str, ET.Element]) -> None:
        self.by_name = by_name
        self.components = components

    def build(self, name: str, node: ET.Element | None, delimiter: int = 0) -> FieldSet:
        fs = FieldSet(name, delimiter=delimiter)
        if node is not None:
            self._add(fs, node, parent_required=True)
        fs.required = frozenset(tag for tag, req in fs.members.items() if req)
        fs.positions = {tag: place for place, tag in enumerate(fs.members)}
        return fs

    def _add(self, fs: FieldSet, node: ET.Element, parent_required: bool) -> None:
        for child in node:
            required = parent_required and child.get("required") == "Y"
            name = child.get("name", "")
            if child.tag == "field":
                fs.members[self._tag(name)] = required
            elif child.tag == "group":
                count = self._tag(name)
                first = next((c for c in child if c.tag in ("field", "group", "component")), None)
                delimiter = self._first_tag(first) if first is not None else 0
                fs.members[count] = required
                fs.groups[count] = self.build(name, child, delimiter)
            elif child.tag == "component":
                comp = self.components.get(name)
                if comp is None:
                    raise ValueError(f"dictionary: component {name!r} is not defined")
                self._add(fs, comp, required)

    def _first_tag(self, node: ET.Element) -> int:
        if node.tag == "component":
            comp = self.components[node.get("name", "")]
            return self._first_tag(next(iter(comp)))
        return self._tag(node.get("name", ""))

    def _tag(self, name: str) -> int:
        try:
            return self.by_name[name]
        except KeyError:
            raise ValueError(f"dictionary: field {name!r} is not defined") from None
