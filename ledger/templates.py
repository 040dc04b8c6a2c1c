"""Metadata templates (IDIS style, docs/templates.md): the schema a record's metadata follows.

A template is a record holding a value of type `spark.template` (its lowest-indexed one):
a JSON Schema in the subset below. A record names a template with a `spark.template-ref`
value at index TEMPLATE_VALUE_INDEX (1001) whose data is the template's identifier in
UTF-8. Its metadata is every value from FIRST_METADATA_VALUE_INDEX (2000) up: a `spark.meta`
value holds a JSON object of properties; any other value is one property, named by its type,
whose data is the property's value (a string as its UTF-8 text; a number, integer, boolean or
object as JSON text). Together they make one document, validated against the template when
the record is written (Register, RegisterBatch, an Update that touches index 1001 or a
metadata index): a later change of the template does not judge records written before.

The schema subset, each keyword refused outside it so that an author never believes that
something is checked when it is not:
- `type`: "object" (the template itself, and nested objects up to MAX_TEMPLATE_DEPTH),
  "string", "number", "integer" or "boolean"; one type, not a list;
- object: `properties`, `required` (names listed in `properties`), `additionalProperties`
  (true, the default, or false);
- string: `minLength`, `maxLength` (in code points), `pattern` (ledger/template_pattern.py:
  a subset matched in linear time), `format: "date"` (RFC 3339 full-date, YYYY-MM-DD);
- number and integer: `minimum`, `maximum` (inclusive);
- `enum`: up to MAX_TEMPLATE_ENUM_MEMBERS strings, numbers, booleans or nulls (then `type`
  may be left out); JSON equality, so 1 and 1.0 are equal and true is not 1;
- annotations, ignored: `$schema`, `$id`, `$comment`, `title`, `description`, `examples`,
  `default`.
Every rule here is pure and deterministic, and its cost is bounded by the limits in
identifiers/limits.py, because every validator runs it on every such record.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.handle import parse_identifier
from sparkchain.identifiers.limits import (
    FIRST_METADATA_VALUE_INDEX,
    MAX_META_JSON_DEPTH,
    MAX_TEMPLATE_DEPTH,
    MAX_TEMPLATE_ENUM_MEMBERS,
    MAX_TEMPLATE_PROPERTIES,
    TEMPLATE_VALUE_INDEX,
)
from sparkchain.ledger.records import META_VALUE_TYPE, json_depth
from sparkchain.ledger.template_pattern import Pattern, PatternError, compile_pattern
from sparkchain.proto import types_pb2 as pb

TEMPLATE_VALUE_TYPE = "spark.template"
TEMPLATE_REF_VALUE_TYPE = "spark.template-ref"

_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "examples", "default"}
)
_KEYWORDS_BY_TYPE: dict[str | None, frozenset[str]] = {
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "number": frozenset({"minimum", "maximum"}),
    "integer": frozenset({"minimum", "maximum"}),
    "boolean": frozenset(),
    None: frozenset(),  # an enum without a type
}
_FORMATS = frozenset({"date"})
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True, slots=True)
class Rule:
    """What one property (or the template itself, kind "object") must be."""

    kind: str | None  # None: only an enum
    enum: tuple[Any, ...] | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: Pattern | None = None
    date: bool = False
    minimum: int | float | None = None
    maximum: int | float | None = None
    properties: tuple[tuple[str, Rule], ...] = ()
    required: tuple[str, ...] = ()
    additional: bool = True

    def property_rule(self, name: str) -> Rule | None:
        for known, rule in self.properties:
            if known == name:
                return rule
        return None


# ---------------------------------------------------------------------------- the template


def _template_error(path: str, message: str) -> SparkError:
    where = f"{TEMPLATE_VALUE_TYPE} {path}" if path else TEMPLATE_VALUE_TYPE
    return SparkError(ErrorCode.INVALID_VALUE, f"{where}: {message}")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


@lru_cache(maxsize=256)  # every record naming a template reads the same bytes again
def parse_template(data: bytes) -> Rule:
    """The rule of a `spark.template` value's data, or INVALID_VALUE naming the keyword."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _template_error("", "data is not UTF-8") from None
    if json_depth(text) > MAX_META_JSON_DEPTH:
        raise _template_error("", f"nests deeper than {MAX_META_JSON_DEPTH}")
    try:
        schema = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise _template_error("", f"data is not JSON: {exc}") from None
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise _template_error("", 'a template is a JSON object with "type": "object"')
    counter = [0]
    return _rule(schema, "", 0, counter)


def _rule(schema: Any, path: str, depth: int, counter: list[int]) -> Rule:
    if not isinstance(schema, dict):
        raise _template_error(path, "a property's schema must be a JSON object")
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind not in _KEYWORDS_BY_TYPE):
        raise _template_error(
            path, f"type {kind!r} is not one of object, string, number, integer, boolean"
        )
    enum = _enum(schema, path) if "enum" in schema else None
    if kind is None and enum is None:
        raise _template_error(path, 'needs a "type" or an "enum"')
    allowed = _KEYWORDS_BY_TYPE[kind] | _ANNOTATIONS | {"type", "enum"}
    for keyword in schema:
        if keyword not in allowed:
            applies = [t for t, words in _KEYWORDS_BY_TYPE.items() if t and keyword in words]
            hint = f" (it applies to {', '.join(applies)})" if applies else ""
            raise _template_error(
                path, f"keyword {keyword!r} is not in the supported subset for this type{hint}"
            )
    if kind == "object":
        if enum is not None:
            raise _template_error(path, "enum of objects is not in the supported subset")
        if depth > MAX_TEMPLATE_DEPTH:
            raise _template_error(path, f"objects nest deeper than {MAX_TEMPLATE_DEPTH}")
        return _object_rule(schema, path, depth, counter)
    if enum is not None and kind is not None:
        for member in enum:
            if _kind_problem(kind, member) is not None:
                raise _template_error(path, f"enum member {member!r} is not of type {kind}")
    return Rule(
        kind=kind,
        enum=enum,
        min_length=_count(schema, "minLength", path),
        max_length=_count(schema, "maxLength", path),
        pattern=_pattern(schema, path),
        date=_format(schema, path),
        minimum=_number(schema, "minimum", path),
        maximum=_number(schema, "maximum", path),
    )


def _object_rule(schema: dict[str, Any], path: str, depth: int, counter: list[int]) -> Rule:
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise _template_error(path, "properties must be a JSON object")
    counter[0] += len(properties)
    if counter[0] > MAX_TEMPLATE_PROPERTIES:
        raise _template_error(
            path, f"the template has more than {MAX_TEMPLATE_PROPERTIES} properties"
        )
    rules = tuple(
        (name, _rule(sub, _join(path, name), depth + 1, counter))
        for name, sub in sorted(properties.items())
    )
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
        raise _template_error(path, "required must be a list of property names")
    if len(set(required)) != len(required):
        raise _template_error(path, "required lists a property twice")
    for name in required:
        if name not in properties:
            raise _template_error(path, f"required property {name!r} is not in properties")
    additional = schema.get("additionalProperties", True)
    if not isinstance(additional, bool):
        raise _template_error(
            path, "additionalProperties must be true or false (schemas are not supported)"
        )
    return Rule(kind="object", properties=rules, required=tuple(required), additional=additional)


def _enum(schema: dict[str, Any], path: str) -> tuple[Any, ...]:
    members = schema["enum"]
    if not isinstance(members, list) or not members:
        raise _template_error(path, "enum must be a non-empty list")
    if len(members) > MAX_TEMPLATE_ENUM_MEMBERS:
        raise _template_error(
            path, f"enum has {len(members)} members, at most {MAX_TEMPLATE_ENUM_MEMBERS}"
        )
    for member in members:
        if member is not None and not isinstance(member, str | int | float | bool):
            raise _template_error(path, "enum members must be strings, numbers, booleans or null")
    return tuple(members)


def _count(schema: dict[str, Any], keyword: str, path: str) -> int | None:
    found = schema.get(keyword)
    if found is None:
        return None
    if isinstance(found, bool) or not isinstance(found, int) or found < 0:
        raise _template_error(path, f"{keyword} must be a whole number >= 0")
    return int(found)


def _number(schema: dict[str, Any], keyword: str, path: str) -> int | float | None:
    found = schema.get(keyword)
    if found is None:
        return None
    if not _is_number(found) or not math.isfinite(found):
        raise _template_error(path, f"{keyword} must be a finite number")
    return found  # type: ignore[no-any-return]


def _pattern(schema: dict[str, Any], path: str) -> Pattern | None:
    source = schema.get("pattern")
    if source is None:
        return None
    if not isinstance(source, str):
        raise _template_error(path, "pattern must be a string")
    try:
        return compile_pattern(source)
    except PatternError as exc:
        raise _template_error(path, f"pattern {source!r} {exc}") from None


def _format(schema: dict[str, Any], path: str) -> bool:
    found = schema.get("format")
    if found is None:
        return False
    if found not in _FORMATS:
        raise _template_error(path, f"format {found!r} is not supported (only 'date')")
    return True


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# ---------------------------------------------------------------------------- documents


def _is_number(item: Any) -> bool:
    return isinstance(item, int | float) and not isinstance(item, bool)


def _json_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) or _is_number(right):
        return _is_number(left) and _is_number(right) and left == right
    return type(left) is type(right) and bool(left == right)


def _kind_problem(kind: str, item: Any) -> str | None:
    if kind == "string":
        ok = isinstance(item, str)
    elif kind == "number":
        ok = _is_number(item) and math.isfinite(item)
    elif kind == "integer":
        ok = _is_number(item) and math.isfinite(item) and float(item).is_integer()
    elif kind == "boolean":
        ok = isinstance(item, bool)
    else:
        ok = isinstance(item, dict)
    return None if ok else f"is {_json_kind(item)}, expected {kind}"


def _json_kind(item: Any) -> str:
    if item is None:
        return "null"
    if isinstance(item, bool):
        return "a boolean"
    if isinstance(item, int):
        return "an integer"
    if isinstance(item, float):
        return "a number"
    if isinstance(item, str):
        return "a string"
    if isinstance(item, list):
        return "an array"
    return "an object"


def _is_date(text: str) -> bool:
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        return False
    parts = text[:4], text[5:7], text[8:]
    if not all(p.isascii() and p.isdecimal() for p in parts):
        return False
    year, month, day = (int(p) for p in parts)
    if not 1 <= month <= 12:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = 29 if month == 2 and leap else _DAYS_IN_MONTH[month - 1]
    return 1 <= day <= days


def document_problem(rule: Rule, document: Any, path: str = "") -> tuple[str, str] | None:
    """(property path, what is wrong) for the first place `document` breaks `rule`, in
    property-name order, or None when it follows it."""
    if rule.kind is not None:
        problem = _kind_problem(rule.kind, document)
        if problem is not None:
            return path, problem
    if rule.enum is not None and not any(_json_equal(document, m) for m in rule.enum):
        return path, f"{json.dumps(document, ensure_ascii=False)} is not one of the enum"
    if rule.kind == "object":
        return _object_problem(rule, document, path)
    if isinstance(document, str):
        return _string_problem(rule, document, path)
    if rule.minimum is not None and document < rule.minimum:
        return path, f"{document} is below the minimum {rule.minimum}"
    if rule.maximum is not None and document > rule.maximum:
        return path, f"{document} is above the maximum {rule.maximum}"
    return None


def _object_problem(rule: Rule, document: dict[str, Any], path: str) -> tuple[str, str] | None:
    for name in rule.required:
        if name not in document:
            return _join(path, name), "is required and missing"
    for name in sorted(document):
        sub = rule.property_rule(name)
        if sub is None:
            if not rule.additional:
                return _join(path, name), "is not a property of the template"
            continue
        problem = document_problem(sub, document[name], _join(path, name))
        if problem is not None:
            return problem
    return None


def _string_problem(rule: Rule, text: str, path: str) -> tuple[str, str] | None:
    if rule.min_length is not None and len(text) < rule.min_length:
        return path, f"is {len(text)} characters, at least {rule.min_length} required"
    if rule.max_length is not None and len(text) > rule.max_length:
        return path, f"is {len(text)} characters, at most {rule.max_length} allowed"
    if rule.pattern is not None and not rule.pattern.search(text):
        return path, f"{json.dumps(text, ensure_ascii=False)} does not match {rule.pattern.source}"
    if rule.date and not _is_date(text):
        return path, f"{json.dumps(text, ensure_ascii=False)} is not a date (YYYY-MM-DD)"
    return None


# ---------------------------------------------------------------------------- records


def template_reference(values: Iterable[pb.Value]) -> str | None:
    """The identifier text of the template a record names at index 1001, or None."""
    for value in values:
        if value.index == TEMPLATE_VALUE_INDEX and value.type == TEMPLATE_REF_VALUE_TYPE:
            return value.data.decode("utf-8", errors="replace")
    return None


def template_value(record: pb.Record) -> pb.Value | None:
    """The lowest-indexed `spark.template` value of a template record, or None."""
    found = [v for v in record.values if v.type == TEMPLATE_VALUE_TYPE]
    return min(found, key=lambda v: v.index) if found else None


@dataclass(frozen=True, slots=True)
class BoundProperty:
    name: str
    index: int  # the value that holds it
    value: Any


def metadata_properties(values: Sequence[pb.Value], rule: Rule | None) -> list[BoundProperty]:
    """The metadata properties of a record's values (index >= 2000), read as the template's
    `rule` types them (without one, a one-property value is its text). TEMPLATE_MISMATCH
    when a property is given twice or a value cannot be read as its property's type."""
    found: dict[str, BoundProperty] = {}
    for value in sorted(values, key=lambda v: v.index):
        if value.index < FIRST_METADATA_VALUE_INDEX:
            continue
        for name, item in _value_properties(value, rule):
            if name in found:
                raise SparkError(
                    ErrorCode.TEMPLATE_MISMATCH,
                    f"property {name} is given twice (index {found[name].index} and "
                    f"index {value.index})",
                )
            found[name] = BoundProperty(name, value.index, item)
    return list(found.values())


def _value_properties(value: pb.Value, rule: Rule | None) -> list[tuple[str, Any]]:
    try:
        text = value.data.decode("utf-8")
    except UnicodeDecodeError:
        raise SparkError(
            ErrorCode.TEMPLATE_MISMATCH, f"metadata value at index {value.index} is not UTF-8"
        ) from None
    if value.type == META_VALUE_TYPE:
        document = json.loads(text)  # records.check_meta_data admitted it: a JSON object
        return list(document.items())
    name = value.type
    sub = rule.property_rule(name) if rule is not None else None
    if sub is None or sub.kind == "string":
        return [(name, text)]
    if sub.kind is None and sub.enum is not None and text in sub.enum:
        return [(name, text)]  # an enum member that is a string: the text itself
    try:
        item = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        if sub.kind is None:
            return [(name, text)]
        raise SparkError(
            ErrorCode.TEMPLATE_MISMATCH,
            f"property {name} (index {value.index}): {text[:40]!r} is not JSON of a {sub.kind}",
        ) from None
    return [(name, item)]


def check_metadata(values: Sequence[pb.Value], template_id: str, rule: Rule) -> None:
    """TEMPLATE_MISMATCH naming the property path when a record's metadata breaks `rule`."""
    properties = metadata_properties(values, rule)
    document = {p.name: p.value for p in properties}
    problem = document_problem(rule, document)
    if problem is None:
        return
    path, message = problem
    index = next((p.index for p in properties if p.name == path.split(".")[0]), None)
    at = f" (index {index})" if index is not None else ""
    raise SparkError(
        ErrorCode.TEMPLATE_MISMATCH,
        f"metadata does not follow template {template_id}: property {path}{at} {message}",
    )


def bound_view(values: Sequence[pb.Value], rule: Rule | None) -> dict[str, Any]:
    """Property name -> {"index", "value"} of a record's metadata, for readers (the gateway);
    a record that no longer reads cleanly shows what it can (values are never lost)."""
    properties: list[BoundProperty] = []
    for reading in (rule, None):
        try:
            properties = metadata_properties(values, reading)
            break
        except SparkError:
            continue
    return {p.name: {"index": p.index, "value": p.value} for p in properties}


def check_template_values(values: Iterable[pb.Value], where: str) -> None:
    """The form of the template values a tx writes: a `spark.template` holds a schema of
    the subset; a `spark.template-ref` sits at index 1001 and holds an identifier."""
    for value in values:
        if value.type == TEMPLATE_VALUE_TYPE:
            try:
                parse_template(value.data)
            except SparkError as exc:
                raise SparkError(exc.code, f"{where}: index {value.index}: {exc.message}") from None
        elif value.type == TEMPLATE_REF_VALUE_TYPE:
            if value.index != TEMPLATE_VALUE_INDEX:
                raise SparkError(
                    ErrorCode.INVALID_VALUE,
                    f"{where}: a {TEMPLATE_REF_VALUE_TYPE} value belongs at index "
                    f"{TEMPLATE_VALUE_INDEX}, not {value.index}",
                )
            try:
                parse_identifier(value.data.decode("utf-8"))
            except (UnicodeDecodeError, SparkError) as exc:
                reason = exc.message if isinstance(exc, SparkError) else "not UTF-8"
                raise SparkError(
                    ErrorCode.INVALID_VALUE,
                    f"{where}: {TEMPLATE_REF_VALUE_TYPE} at index {value.index} must hold "
                    f"a template's identifier: {reason}",
                ) from None


def check_record_template(
    values: Sequence[pb.Value], find_record: Callable[[str], pb.Record | None]
) -> None:
    """A record whose values name a template at index 1001 has metadata that follows the
    template as it is now; `find_record(key)` reads the template (the ledger's state, or the
    CLI's node, which checks a document before sending it)."""
    reference = template_reference(values)
    if reference is None:
        return
    template_id = parse_identifier(reference)
    template = find_record(template_id.key)
    if template is None:
        raise SparkError(
            ErrorCode.NOT_FOUND,
            f"template {template_id.display} named by the {TEMPLATE_REF_VALUE_TYPE} value at "
            f"index {TEMPLATE_VALUE_INDEX} does not exist",
        )
    if template.status == pb.REVOKED:
        raise SparkError(
            ErrorCode.REVOKED, f"template {template.identifier} is revoked: records cannot use it"
        )
    check_metadata(values, template.identifier, template_rule(template))


def template_rule(record: pb.Record) -> Rule:
    """The rule of a template record; INVALID_VALUE when it holds no `spark.template`."""
    found = template_value(record)
    if found is None:
        raise SparkError(
            ErrorCode.INVALID_VALUE,
            f"{record.identifier} is not a template: it holds no {TEMPLATE_VALUE_TYPE} value",
        )
    return parse_template(found.data)
