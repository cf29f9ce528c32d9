"""Cloud Monitoring filter language, the subset timeSeries.list needs.

Grammar (Google's, reduced):
    expr       := and_expr ("OR" and_expr)*
    and_expr   := unary (["AND"] unary)*          juxtaposition means AND
    unary      := "NOT" unary | "(" expr ")" | comparison
    comparison := field ("=" | "!=" | ":" | "<" | "<=" | ">" | ">=") value   (ordering compares numbers)
    field      := metric.type | resource.type | project
                | metric.label[s].NAME | resource.label[s].NAME   (NAME may be quoted)
    value      := "string" | number | true | false
                | starts_with("s") | ends_with("s") | has_substring("s") | one_of("a", "b", ...)
                | monitoring.regex.full_match("re")

timeSeries.list needs exactly one metric type: one `metric.type = "T"`, ANDed with the rest of the filter (not
under NOT, not an alternative of OR). `resource.type = "R"` ANDed the same way is reported, so the caller can
check the metric is written for R.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

Predicate = Callable[[dict], bool]


class FilterError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|<=|>=|=|<|>|:|\(|\)|,)
      | (?P<word>[A-Za-z0-9_./\-]+)
    )""",
    re.VERBOSE,
)

_SINGLE_METRIC_TYPE = 'the filter must specify a single metric type, as metric.type = "TYPE"'
_ORDERING = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_FUNCTIONS = {"starts_with", "ends_with", "has_substring", "one_of", "monitoring.regex.full_match"}
_LABEL_FIELD = re.compile(r"^(metric|resource)\.labels?\.(.+)$")


@dataclass
class ParsedFilter:
    predicate: Predicate
    metric_type: str
    resource_types: list[str] = field(default_factory=list)  # each `resource.type = "R"` ANDed at the top


@dataclass
class _Token:
    kind: str  # string | op | word | end
    text: str


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    stripped_end = len(text.rstrip())
    while position < stripped_end:
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise FilterError(f"unexpected character {text[position:].lstrip()[:1]!r} at offset {position}")
        kind = match.lastgroup
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    tokens.append(_Token("end", ""))
    return tokens


def _field_getter(name: str) -> Callable[[dict], str | None]:
    if name == "metric.type":
        return lambda s: s["metric"]["type"]
    if name == "resource.type":
        return lambda s: s["resource"]["type"]
    if name == "project":
        return lambda s: s["project"]
    label = _LABEL_FIELD.match(name)
    if label:
        scope, key = label.groups()
        return lambda s: s[scope]["labels"].get(key)
    raise FilterError(f"unknown field {name!r}")


class _Parser:
    def __init__(self, text: str, one_metric_type: bool = True):
        self.one_metric_type = one_metric_type  # timeSeries.list's rule; descriptor lists take any selector
        self.tokens = _tokenize(text)
        self.index = 0
        self.metric_types: list[str] = []
        self.resource_types: list[str] = []
        self.guarded = 0  # > 0 while parsing under NOT or inside one alternative of an OR

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect_op(self, op: str) -> None:
        token = self.take()
        if token.kind != "op" or token.text != op:
            raise FilterError(f"expected {op!r} but found {token.text or 'end of filter'!r}")

    def parse(self) -> Predicate:
        predicate = self.expr()
        if self.peek().kind != "end":
            raise FilterError(f"unexpected {self.peek().text!r}")
        return predicate

    def expr(self) -> Predicate:
        metric_types, resource_types = len(self.metric_types), len(self.resource_types)
        terms = [self.and_expr()]
        if self.peek().kind == "word" and self.peek().text == "OR":
            # The first term turned out to be an alternative: what it named is not ANDed with the filter.
            if len(self.metric_types) > metric_types and self.one_metric_type:
                raise FilterError(_SINGLE_METRIC_TYPE)
            del self.resource_types[resource_types:]
            self.guarded += 1
            while self.peek().kind == "word" and self.peek().text == "OR":
                self.take()
                terms.append(self.and_expr())
            self.guarded -= 1
        return terms[0] if len(terms) == 1 else (lambda s: any(t(s) for t in terms))

    def and_expr(self) -> Predicate:
        terms = [self.unary()]
        while True:
            token = self.peek()
            if token.kind == "word" and token.text == "AND":
                self.take()
            elif token.kind == "end" or (token.kind == "op" and token.text == ")") or token.text == "OR":
                break
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else (lambda s: all(t(s) for t in terms))

    def unary(self) -> Predicate:
        token = self.peek()
        if token.kind == "word" and token.text == "NOT":
            self.take()
            self.guarded += 1
            inner = self.unary()
            self.guarded -= 1
            return lambda s: not inner(s)
        if token.kind == "op" and token.text == "(":
            self.take()
            inner = self.expr()
            self.expect_op(")")
            return inner
        return self.comparison()

    def field_name(self) -> str:
        token = self.take()
        if token.kind != "word" or token.text in {"AND", "OR", "NOT"}:
            raise FilterError(f"expected a field name but found {token.text or 'end of filter'!r}")
        name = token.text
        if name.endswith(".") and self.peek().kind == "string":
            name += _unquote(self.take().text)
        return name

    def comparison(self) -> Predicate:
        name = self.field_name()
        getter = _field_getter(name)
        op = self.take()
        if op.kind != "op" or op.text not in {"=", "!=", ":", *_ORDERING}:
            raise FilterError(f"expected a comparison operator after {name!r}")
        literal = self.peek()
        if name == "metric.type" and self.one_metric_type:
            # timeSeries.list needs a single metric type: only `metric.type = "TYPE"`, ANDed, names one.
            if op.text != "=" or literal.kind != "string" or self.guarded:
                raise FilterError(_SINGLE_METRIC_TYPE)
            self.metric_types.append(_unquote(literal.text))
        elif name == "resource.type" and op.text == "=" and literal.kind == "string" and not self.guarded:
            self.resource_types.append(_unquote(literal.text))
        if op.text in _ORDERING:
            return self.ordering(getter, op.text)
        test = self.value(op.text)
        if op.text == "!=":
            return lambda s: (v := getter(s)) is None or not test(v)
        return lambda s: (v := getter(s)) is not None and test(v)

    def value(self, op: str) -> Callable[[str], bool]:
        token = self.take()
        if token.kind == "string":
            literal = _unquote(token.text)
            return (lambda v: literal in v) if op == ":" else (lambda v: v == literal)
        if token.kind != "word":
            raise FilterError(f"expected a value but found {token.text or 'end of filter'!r}")
        if token.text in _FUNCTIONS:
            if op == ":":
                raise FilterError(f"{token.text}() cannot follow ':'")
            return self.function(token.text)
        if re.fullmatch(r"-?\d+(\.\d+)?|true|false", token.text):
            literal = token.text
            return (lambda v: literal in v) if op == ":" else (lambda v: v == literal)
        raise FilterError(f"value {token.text!r} must be quoted")

    def ordering(self, getter, op: str) -> Predicate:
        """`label < 5`: numeric comparison of a label value (Google documents it for INT64 labels)."""
        token = self.take()
        text = _unquote(token.text) if token.kind == "string" else token.text
        try:
            bound = float(text)
        except ValueError:
            raise FilterError(f"{op} needs a number, found {token.text or 'end of filter'!r}") from None
        compare = _ORDERING[op]

        def test(series: dict) -> bool:
            value = getter(series)
            try:
                return value is not None and compare(float(value), bound)
            except ValueError:
                return False

        return test

    def function(self, name: str) -> Callable[[str], bool]:
        self.expect_op("(")
        args: list[str] = []
        while True:
            token = self.take()
            if token.kind != "string":
                raise FilterError(f"{name}() takes quoted string arguments")
            args.append(_unquote(token.text))
            separator = self.take()
            if separator.kind == "op" and separator.text == ")":
                break
            if separator.kind != "op" or separator.text != ",":
                raise FilterError(f"expected ',' or ')' in {name}()")
        if name == "one_of":
            choices = set(args)
            return lambda v: v in choices
        if len(args) != 1:
            raise FilterError(f"{name}() takes exactly one argument")
        (arg,) = args
        if name == "starts_with":
            return lambda v: v.startswith(arg)
        if name == "ends_with":
            return lambda v: v.endswith(arg)
        if name == "has_substring":
            return lambda v: arg in v
        try:
            pattern = re.compile(arg)
        except re.error as bad:
            raise FilterError(f"invalid regular expression {arg!r}: {bad}") from None
        return lambda v: pattern.fullmatch(v) is not None


def parse_filter(text: str) -> ParsedFilter:
    """The filter's predicate over {"metric": {type, labels}, "resource": {type, labels}, "project": str}, its
    metric type and the resource types it requires.

    Raises FilterError for syntax errors and for a filter that does not name exactly one metric type with
    `metric.type = "TYPE"` ANDed with the rest, which timeSeries.list requires.
    """
    if not text or not text.strip():
        raise FilterError("a filter is required")
    parser = _Parser(text)
    predicate = parser.parse()
    if len(parser.metric_types) != 1:
        raise FilterError(_SINGLE_METRIC_TYPE)
    return ParsedFilter(predicate, parser.metric_types[0], parser.resource_types)


def parse_selector(text: str) -> Predicate:
    """A filter as metricDescriptors.list takes it: any selectors, `metric.type = starts_with("...")` included."""
    return _Parser(text, one_metric_type=False).parse()
