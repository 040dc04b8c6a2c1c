"""The gateway's GS1 Digital Link resolver (issue 11 item 3, DESIGN §10).

`GET /{primary AI}/{key}[/{qualifier AI}/{value}…]`, in numeric AIs or their Digital Link
1.1 short names (`/01/…/10/…/21/…`, `/gtin/…/lot/…/ser/…`, `/sscc/…`, `/414/…/254/…`),
at the root of the gateway: the gateway owns its URL space (`/api/…`, `/metrics`, …), so a
leading path before the key is not served; a proxy that publishes the resolver under
`https://id.example.com/dl/` strips `/dl` before passing requests on.

Resolution: the path is parsed and checked (identifiers/gs1.py); for each prefix P of
`[gs1] prefixes`, in order, the identifiers `P/{canonical suffix}` are looked up from the
most specific down to the primary key alone (qualifiers dropped from the right). The first
record found answers:
- 307 with `Location:` the value the link type selects (below);
- 200 with the record as an RFC 9264 linkset (`application/linkset+json`) when asked for
  with `?linkType=all` or `Accept: application/linkset+json`.
Every answer to a path that parses (307, 200, 404) carries
`Link: <…/{canonical suffix}?linkType=all>; rel="linkset"; type="application/linkset+json"`
(a 400 has no key to name a linkset of).
A malformed path or a bad check digit is 400, no record at any level (or no prefix
configured) 404, no value of the asked link type 404; errors are JSON
`{"code": …, "message": …}`. CORS: any origin may read, and may read the `Link` header.

Link types and record values (`linkType=` accepts the compact `gs1:pip` and the full
`https://gs1.org/voc/pip` or `https://ref.gs1.org/voc/pip` forms):
- none, or `gs1:defaultLink`: the record's `URL` value (the lowest index), else its
  `gs1:defaultLink` value;
- `gs1:X`: the value whose type is `gs1:X` (or the full URI of X);
- anything else: the value of exactly that type (`URL`, or an extension URI).
Only a value whose data is an `http(s)://` URL is a link: a redirect never points
elsewhere (no `javascript:`), and other values (EMAIL, HS_ADMIN, spark.meta) are not in
the linkset. In the linkset, `URL` values are `https://gs1.org/voc/defaultLink` links,
GS1 types their vocabulary URI, types that are absolute URIs themselves.

A resolve is one LevelDB get per level tried (at most a few per prefix), on the event loop
as the gateway's other record reads are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aiohttp import web
from multidict import CIMultiDict

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.identifiers.gs1 import DigitalLink, parse_digital_link_path
from sparkchain.identifiers.gs1_keys import PRIMARY_KEYS, QUALIFIERS
from sparkchain.node.answer_cache import AnswerCache
from sparkchain.node.openapi import BUSY_RESPONSE
from sparkchain.proto import types_pb2 as pb

log = logging.getLogger("spark.gateway.gs1")

LINKSET_TYPE: Final = "application/linkset+json"
JSON_TYPE: Final = "application/json"
GS1_VOCABULARY: Final = "https://gs1.org/voc/"
_VOCABULARY_FORMS: Final = (
    "https://gs1.org/voc/",
    "http://gs1.org/voc/",
    "https://ref.gs1.org/voc/",
)
DEFAULT_LINK: Final = "defaultLink"
URL_TYPE: Final = "URL"
ALL_LINK_TYPES: Final = "all"


class RecordReader(Protocol):
    """The part of Ledger the resolver needs."""

    @property
    def height(self) -> int: ...

    def resolve(
        self, identifier: str, types: Collection[str] = (), indexes: Collection[int] = ()
    ) -> pb.Record: ...


@dataclass(frozen=True, slots=True)
class Found:
    identifier: str  # the record's identifier as looked up: `P/{suffix}`
    suffix: str
    record: pb.Record


class _Refused(Exception):
    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------- pure parts


def link_type_name(text: str) -> str:
    """`gs1:pip`, `https://gs1.org/voc/pip` → `gs1:pip`; other types unchanged."""
    for form in _VOCABULARY_FORMS:
        if text.startswith(form) and len(text) > len(form):
            return "gs1:" + text[len(form) :]
    return text


def link_url(value: pb.Value) -> str | None:
    """The value's data when it is an http(s) URL (the only values that are links)."""
    try:
        text = value.data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lowered = text[:8].lower()
    if not lowered.startswith(("https://", "http://")) or any(ch.isspace() for ch in text):
        return None
    return text


def relation(value_type: str) -> str | None:
    """The linkset relation of a value type, None for types that are not links."""
    if value_type == URL_TYPE:
        return GS1_VOCABULARY + DEFAULT_LINK
    name = link_type_name(value_type)
    if name.startswith("gs1:"):
        return GS1_VOCABULARY + name[4:]
    if value_type[:8].lower().startswith(("https://", "http://")):
        return value_type
    return None


def select_link(record: pb.Record, link_type: str | None) -> str | None:
    """The URL a redirect for `link_type` (None: the default link) points to."""
    wanted = link_type_name(link_type) if link_type else "gs1:" + DEFAULT_LINK
    ordered = sorted(record.values, key=lambda value: value.index)
    if wanted == "gs1:" + DEFAULT_LINK:
        for chosen_type in (URL_TYPE, wanted):
            for value in ordered:
                if link_type_name(value.type) == chosen_type and (url := link_url(value)):
                    return url
        return None
    for value in ordered:
        if link_type_name(value.type) == wanted and (url := link_url(value)):
            return url
    return None


def linkset(record: pb.Record, anchor: str) -> dict[str, Any]:
    """The record as an RFC 9264 linkset: one context (`anchor`), a member per relation."""
    context: dict[str, Any] = {"anchor": anchor}
    for value in sorted(record.values, key=lambda value: value.index):
        rel, url = relation(value.type), link_url(value)
        if rel is not None and url is not None:
            context.setdefault(rel, []).append({"href": url})
    return {"linkset": [context]}


def wants_linkset(link_type: str | None, accept: str) -> bool:
    if link_type == ALL_LINK_TYPES:
        return True
    offered = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    return link_type is None and LINKSET_TYPE in offered


# ---------------------------------------------------------------------------- the handler


class Gs1Resolver:
    """Answers Digital Link requests from the records under `prefixes`."""

    def __init__(self, records: RecordReader, prefixes: Sequence[str]) -> None:
        self._records = records
        self._prefixes = tuple(prefixes)
        self._answers: AnswerCache[tuple[int, CIMultiDict[str], bytes]] = AnswerCache()

    def add_routes(self, app: web.Application) -> None:
        """A route per primary key name (`/01/…`, `/gtin/…`): nothing else is taken."""
        names = set(PRIMARY_KEYS) | {key.spec.short_name for key in PRIMARY_KEYS.values()}
        for name in sorted(names):
            # any character, a newline too, so that every answer is the resolver's JSON
            app.router.add_get(rf"/{name}/{{tail:[\s\S]+}}", self.resolve)

    async def resolve(self, request: web.Request) -> web.Response:
        # a redirect or linkset is a function of the committed state and of the request's
        # origin, target and Accept header: kept per height (node/answer_cache.py)
        accept = request.headers.get("Accept", "")
        key = f"{request.scheme}://{request.host}{request.raw_path}\n{accept}"
        height = self._records.height
        kept = self._answers.get(height, key)
        if kept is not None:
            status, headers, body = kept
            return web.Response(status=status, headers=headers, body=body)
        try:
            response = self._answer(request)
        except _Refused as refused:
            response = _error(refused.status, refused.code, refused.message)
        except Exception:
            log.exception("gs1_resolve_failed", extra={"path": request.path[:200]})
            response = _error(500, ErrorCode.INTERNAL, "server error")
        else:
            if response.status in (200, 307):  # not refusals: nobody fills it with misses
                body = response.body if isinstance(response.body, bytes) else b""
                headers = CIMultiDict(response.headers)
                size = len(key) + len(body) + sum(len(k) + len(v) for k, v in headers.items())
                self._answers.put(height, key, (response.status, headers, body), size)
            return response
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    def _answer(self, request: web.Request) -> web.Response:
        link = _parse(request)
        link_type = next((value for key, value in link.extensions if key == "linkType"), None)
        base = f"{request.scheme}://{request.host}"
        headers = {
            "Link": f"<{base}/{link.canonical_suffix()}?linkType={ALL_LINK_TYPES}>; "
            f'rel="linkset"; type="{LINKSET_TYPE}"',
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Expose-Headers": "Link, Location, Spark-Record-Status",
            "Vary": "Accept",
        }
        try:
            found = self._find(link)
        except _Refused as refused:
            response = _error(refused.status, refused.code, refused.message)
            response.headers.update(headers)
            return response
        if found.record.status == pb.REVOKED:
            headers["Spark-Record-Status"] = "REVOKED"
        if wants_linkset(link_type, request.headers.get("Accept", "")):
            body = json.dumps(linkset(found.record, f"{base}/{found.suffix}"), ensure_ascii=False)
            return web.Response(text=body, status=200, headers=headers, content_type=LINKSET_TYPE)
        target = select_link(found.record, link_type)
        if target is None:
            asked = link_type or f"gs1:{DEFAULT_LINK}"
            response = _error(
                404,
                ErrorCode.NOT_FOUND,
                f"{found.identifier} has no link of type {asked} (a value of that type whose "
                f"data is an http(s) URL); ?linkType={ALL_LINK_TYPES} lists its links",
            )
            response.headers.update(headers)
            return response
        headers["Location"] = target
        return web.Response(status=307, headers=headers)

    def identifier_of(self, link: DigitalLink) -> str:
        """The identifier `link` resolves to, as a request for it would (the explorer's
        search); SparkError with the resolver's reason when there is none."""
        try:
            return self._find(link).identifier
        except _Refused as refused:
            raise SparkError(refused.code, refused.message) from None

    def _find(self, link: DigitalLink) -> Found:
        if not self._prefixes:
            raise _Refused(
                404,
                ErrorCode.NOT_FOUND,
                "no GS1 prefixes are configured on this node: set [gs1] prefixes in "
                "config.toml to the Handle prefixes the resolver searches",
            )
        suffixes = link.fallback_suffixes()
        for prefix in self._prefixes:
            for suffix in suffixes:
                identifier = f"{prefix}/{suffix}"
                try:
                    record = self._records.resolve(identifier)
                except SparkError as error:
                    # INVALID_IDENTIFIER: too long to be an identifier, so none is registered
                    if error.code in (ErrorCode.NOT_FOUND, ErrorCode.INVALID_IDENTIFIER):
                        continue
                    raise
                return Found(identifier, suffix, record)
        tried = " or ".join(f"{prefix}/{suffixes[-1]}" for prefix in self._prefixes)
        raise _Refused(
            404,
            ErrorCode.NOT_FOUND,
            f"no record for {link.key_title} {link.key} at any level: tried "
            f"{len(suffixes)} level(s) under {', '.join(self._prefixes)}, down to {tried}",
        )


def _parse(request: web.Request) -> DigitalLink:
    """The request's Digital Link, read from the raw target: a decoded path would turn an
    encoded `/` inside a value into a separator."""
    target = request.raw_path
    if "?" not in target and request.query_string:
        target += "?" + request.query_string
    try:
        return parse_digital_link_path(target[1:])
    except SparkError as error:
        raise _Refused(400, error.code, error.message) from None


def _error(status: int, code: ErrorCode, message: str) -> web.Response:
    body = json.dumps({"code": str(code), "message": message}, ensure_ascii=False)
    response = web.Response(text=body, status=status, content_type=JSON_TYPE)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# ---------------------------------------------------------------------------- OpenAPI


def openapi_paths() -> dict[str, Any]:
    """OpenAPI 3.1 `paths` entries of the resolver: one per route, a primary key's numeric
    AI or short name followed by the rest of the Digital Link path (`tail`)."""
    paths: dict[str, Any] = {}
    for ai, key in PRIMARY_KEYS.items():
        for name in (ai, key.spec.short_name):
            if name:
                paths[f"/{name}/{{tail}}"] = {"get": _operation(ai, key.qualifier_paths)}
    return paths


_ERROR_SCHEMA: Final = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}
_LINKSET_SCHEMA: Final = {
    "type": "object",
    "required": ["linkset"],
    "properties": {
        "linkset": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["anchor"],
                "properties": {"anchor": {"type": "string"}},
                "additionalProperties": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["href"],
                        "properties": {"href": {"type": "string"}},
                    },
                },
            },
        }
    },
}
_LINK_HEADER: Final = {
    "description": 'the linkset of the key: <…?linkType=all>; rel="linkset"',
    "schema": {"type": "string"},
}


def _operation(primary_ai: str, qualifier_paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    key = PRIMARY_KEYS[primary_ai].spec
    orders = ["/".join(f"{ai} ({QUALIFIERS[ai].title})" for ai in path) for path in qualifier_paths]
    qualifiers = f"; then key qualifiers, each optional, in this order: {' or '.join(orders)}"
    parameters: list[dict[str, Any]] = [
        {
            "name": "tail",
            "in": "path",
            "required": True,
            "description": f"the {key.title} (AI {primary_ai}), percent-encoded"
            + (qualifiers if orders else ""),
            "schema": {"type": "string", "minLength": 1},
        }
    ]
    parameters.append(
        {
            "name": "linkType",
            "in": "query",
            "required": False,
            "description": "the link type to redirect to (gs1:pip, https://gs1.org/voc/pip, "
            "URL, …), or `all` for the linkset",
            "schema": {"type": "string"},
        }
    )
    error = {"content": {JSON_TYPE: {"schema": _ERROR_SCHEMA}}}
    return {
        "summary": f"GS1 Digital Link resolver: {key.title}",
        "description": "Numeric AIs and Digital Link short names alike. Falls back from the "
        "most specific registered identifier to the primary key alone, prefix by prefix "
        "of [gs1] prefixes.",
        "parameters": parameters,
        "responses": {
            "307": {
                "description": "redirect to the link of the asked type",
                "headers": {
                    "Location": {"schema": {"type": "string"}},
                    "Link": _LINK_HEADER,
                },
            },
            "200": {
                "description": "the record as an RFC 9264 linkset (linkType=all or "
                "Accept: application/linkset+json)",
                "headers": {"Link": _LINK_HEADER},
                "content": {LINKSET_TYPE: {"schema": _LINKSET_SCHEMA}},
            },
            "400": {"description": "malformed path or bad check digit", **error},
            "404": {"description": "no record at any level, or no link of that type", **error},
            "500": {"description": "server error", **error},
            "503": BUSY_RESPONSE,
        },
    }
