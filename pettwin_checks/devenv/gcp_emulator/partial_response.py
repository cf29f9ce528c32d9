"""The `fields` system parameter (partial response): which parts of a response to send back.

Syntax, as Google documents it for its REST APIs (the `fields` query parameter or the X-Goog-FieldMask header): a
comma-separated list of fields; `a/b` (or `a.b`) selects `b` inside `a`; `a(b,c)` selects `b` and `c` inside `a`;
`*` selects every field at its level; in an array the selection applies to each element. A path the method's response message does not have is Google's 400 (`Error expanding 'fields'
parameter. Cannot find matching fields for path 'a.b'.`), whatever the response holds.
"""

from __future__ import annotations

import re

from .errors import BAD_REQUEST, ApiError

# name -> what to keep inside it (None: all of it)
Selection = dict[str, "Selection | None"]

_TOKEN = re.compile(r"\s*([A-Za-z0-9_*]+|[,/.()])")


class _Parser:
    def __init__(self, text: str):
        self.tokens = []
        position = 0
        while position < len(text.rstrip()):
            match = _TOKEN.match(text, position)
            if not match:
                raise ValueError(text[position:].strip())
            self.tokens.append(match.group(1))
            position = match.end()
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.index += 1
        return token

    def selection(self) -> Selection:
        selected: Selection = {}
        while True:
            _merge(selected, self.item())
            if self.peek() != ",":
                return selected
            self.take()

    def item(self) -> Selection:
        name = self.take()
        if name is None or not re.fullmatch(r"[A-Za-z0-9_*]+", name):
            raise ValueError(name or "")
        if self.peek() in {"/", "."}:
            self.take()
            return {name: self.item()}
        if self.peek() == "(":
            self.take()
            inner = self.selection()
            if self.take() != ")":
                raise ValueError(name)
            return {name: inner}
        return {name: None}


def _merge(into: Selection, more: Selection) -> None:
    for name, inner in more.items():
        if name in into and into[name] is not None and inner is not None:
            _merge(into[name], inner)
        else:
            into[name] = None if name in into and (into[name] is None or inner is None) else inner


def parse(text: str) -> Selection:
    parser = _Parser(text)
    try:
        selected = parser.selection()
    except ValueError as bad:
        raise _invalid(text, str(bad)) from None
    if parser.peek() is not None:
        raise _invalid(text, parser.peek())
    return selected


def _invalid(text: str, path: str) -> ApiError:
    violation = {
        "field": text,
        "description": f"Error expanding 'fields' parameter. Cannot find matching fields for path '{path}'.",
    }
    return ApiError(
        400, "Request contains an invalid argument.", [{"@type": BAD_REQUEST, "fieldViolations": [violation]}]
    )


def check(text: str, selected: Selection, schemas: dict, schema_name: str | None) -> None:
    """Raises Google's 400 when the selection names a field the response message does not have."""
    if schema_name is None:
        return
    missing = _missing(selected, schemas, schemas[schema_name], "")
    if missing:
        raise _invalid(text, missing)


def _missing(selected: Selection, schemas: dict, schema: dict, prefix: str) -> str | None:
    properties = schema.get("properties", {})
    for name, inner in selected.items():
        path = f"{prefix}{name}"
        if name == "*":
            continue
        prop = properties.get(name)
        if prop is None:
            return path
        while "$ref" in prop or prop.get("type") == "array":
            prop = schemas[prop["$ref"]] if "$ref" in prop else prop.get("items", {})
        if inner is not None and "properties" in prop:
            missing = _missing(inner, schemas, prop, f"{path}.")
            if missing:
                return missing
        elif inner is not None and "additionalProperties" not in prop:
            return f"{path}.{next(iter(inner))}"
    return None


def select(value, selected: Selection | None):
    """The parts of a JSON value the selection keeps."""
    if selected is None:
        return value
    if isinstance(value, list):
        return [select(item, selected) for item in value]
    if not isinstance(value, dict):
        return value
    kept = {}
    for name, item in value.items():
        if name in selected:
            kept[name] = select(item, selected[name])
        elif "*" in selected:
            kept[name] = select(item, selected["*"])
    return kept
