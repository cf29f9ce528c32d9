"""What the agent does with the regexes of agent/datadog.yaml and the conf.d log sources, replayed in Python.

The agent compiles every pattern with Go's regexp package (RE2 syntax) and rewrites with ReplaceAll, whose
replacement is a template (`$1`, `${1}`, `${name}`, `$$`). google-re2 is the same engine; this module adds
Go's template expansion and the order in which the logs agent applies its rules, so tests can run sample
lines through the configuration exactly as shipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import re2
import yaml

ROOT = Path(__file__).resolve().parents[2]
DATADOG_YAML = ROOT / "agent" / "datadog.yaml"
BACKEND_LOGS_YAML = ROOT / "conf.d" / "pettwin_backend.d" / "conf.yaml"

GLOBAL_RULE_TYPES = {"exclude_at_match", "include_at_match", "mask_sequences"}
SOURCE_RULE_TYPES = GLOBAL_RULE_TYPES | {"multi_line", "exclude_truncated"}


def compile_go(pattern: str):
    """Compile like Go's regexp.Compile: RE2 syntax only (a look-around or back-reference raises)."""
    return re2.compile(pattern)


def _group_name_end(template: str, start: int) -> int:
    end = start
    while end < len(template) and (template[end].isascii() and (template[end].isalnum() or template[end] == "_")):
        end += 1
    return end


def go_expand(template: str, match) -> str:
    """Go's Regexp.Expand: `$name` takes the longest run of letters, digits and `_`; `${name}` is explicit;
    `$$` is a literal `$`; an unknown or out-of-range group expands to nothing; a malformed `$` stays as is."""
    out: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        if template.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if template.startswith("${", i):
            close = template.find("}", i + 2)
            name = template[i + 2 : close] if close != -1 else ""
            if not name or _group_name_end(name, 0) != len(name):
                out.append("$")
                i += 1
                continue
            i = close + 1
        else:
            end = _group_name_end(template, i + 1)
            name = template[i + 1 : end]
            if not name:
                out.append("$")
                i += 1
                continue
            i = end
        out.append(_group_text(match, name))
    return "".join(out)


def _group_text(match, name: str) -> str:
    if name.isdigit():
        index = int(name)
        if index > len(match.groups()):
            return ""
        return match.group(index) or ""
    try:
        return match.group(name) or ""
    except (IndexError, KeyError):
        return ""


def go_replace_all(regex, text: str, template: str) -> str:
    return regex.sub(lambda match: go_expand(template, match), text)


@dataclass(frozen=True)
class Rule:
    type: str
    name: str
    regex: object
    placeholder: str = ""


def load_rules(raw_rules: list[dict], allowed_types: set[str]) -> list[Rule]:
    rules = []
    for raw in raw_rules:
        if raw["type"] not in allowed_types:
            raise ValueError(f"rule {raw.get('name')!r}: type {raw['type']!r} not allowed here")
        pattern = raw["pattern"]
        if raw["type"] == "multi_line":
            # The agent anchors multi_line patterns at the start of the line.
            pattern = "^" + pattern
        rules.append(Rule(raw["type"], raw["name"], compile_go(pattern), raw.get("replace_placeholder", "")))
    return rules


def datadog_config() -> dict:
    with open(DATADOG_YAML) as f:
        return yaml.safe_load(f)


def backend_log_sources() -> list[dict]:
    with open(BACKEND_LOGS_YAML) as f:
        return yaml.safe_load(f)["logs"]


def global_rules() -> list[Rule]:
    return load_rules(datadog_config()["logs_config"]["processing_rules"], GLOBAL_RULE_TYPES)


def process_line(line: str, rules: list[Rule], fired: set[str] | None = None) -> str | None:
    """The logs processor: rules in order, each on the previous one's output; None when the line is dropped."""
    for rule in rules:
        if rule.type == "exclude_at_match" and rule.regex.search(line):
            if fired is not None:
                fired.add(rule.name)
            return None
        if rule.type == "include_at_match" and not rule.regex.search(line):
            return None
        if rule.type == "mask_sequences":
            masked = go_replace_all(rule.regex, line, rule.placeholder)
            if masked != line and fired is not None:
                fired.add(rule.name)
            line = masked
    return line


def aggregate_multi_line(lines: list[str], start_pattern) -> list[str]:
    """The multi_line handler: a line matching the start pattern opens a record; other lines join the open one."""
    records: list[list[str]] = []
    for line in lines:
        if start_pattern.search(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    return ["\n".join(record) for record in records]
