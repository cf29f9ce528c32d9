"""Validation helpers the checks' config_models/validators.py share (the generated models call those)."""

from __future__ import annotations

import difflib
import re
import typing
from types import MappingProxyType

from pydantic import BaseModel, ValidationError

from pettwin_checks.coordination import LeaderElectionConfig


def nested_defaults(value, defaults: dict) -> dict:
    """A nested option's mapping with the defaults its spec documents filled in (the generator fills only the
    top-level options')."""
    if value is None:
        return dict(defaults)
    if not isinstance(value, dict):
        return value  # the model rejects it, naming the option
    return {**defaults, **value}


def leader_election(value, **kwargs):
    """The `leader_election` mapping of a GCP check, checked and completed as pettwin_kafka_lag's connection when
    `enabled` (off, its connection keys may stay in place, unchecked)."""
    if not isinstance(value, dict) or not value.get("enabled"):
        return value
    try:
        return LeaderElectionConfig.model_validate(value).model_dump()
    except ValidationError as e:
        error = e.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ValueError(f"leader_election{'.' + where if where else ''}: {error['msg']}") from None


def regexes(value, **kwargs):
    for pattern in [value] if isinstance(value, str) else value or []:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as e:
            raise ValueError(f"invalid regular expression {pattern!r}: {e}") from None
    return value


# Instance keys the agent itself reads, whatever the check (the check ID's name, the loader, tagging and indexing).
AGENT_INSTANCE_KEYS = frozenset({"name", "loader", "check_tag_cardinality", "no_index"})


def unknown_options(raw, model: type[BaseModel], path: str = "") -> list[str]:
    """A warning for every option of `raw` (a mapping as configured) that `model` does not know, at any depth,
    naming the closest known option: the generated models ignore unknown keys, and an ignored `timeoutSeconds`
    otherwise falls back to its default without a word."""
    if not isinstance(raw, dict):
        return []
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    messages = []
    for key, value in raw.items():
        field = fields.get(key)
        if field is None:
            if path or key not in AGENT_INSTANCE_KEYS:
                messages.append(_unknown(f"{path}{key}", key, fields))
            continue
        nested = _nested_model(field.annotation)
        if nested is None:
            continue
        if isinstance(value, dict) and _is_mapping(field.annotation):  # user-named keys, each holding a `nested`
            for name, item in value.items():
                messages.extend(unknown_options(item, nested, f"{path}{key}.{name}."))
        elif isinstance(value, dict):
            messages.extend(unknown_options(value, nested, f"{path}{key}."))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                messages.extend(unknown_options(item, nested, f"{path}{key}[{index}]."))
    return messages


def _unknown(where: str, key: str, known) -> str:
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", str(key)).lower().replace("-", "_")
    close = difflib.get_close_matches(snake, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean `{close[0]}`?" if close else f"; known options: {', '.join(sorted(known))}"
    return f"unknown option `{where}` is ignored{hint}"


def _nested_model(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _nested_model(argument)
        if found is not None:
            return found
    return None


def _is_mapping(annotation) -> bool:
    if typing.get_origin(annotation) is MappingProxyType:
        return True
    return any(_is_mapping(argument) for argument in typing.get_args(annotation))


def warn_unknown_options(check) -> None:
    """After load_configuration_models(): one warning per unknown option of the instance and init_config."""
    sections = (
        (check.instance, check._config_model_instance, ""),
        (check.init_config, check._config_model_shared, "init_config."),
    )
    for raw, model, prefix in sections:
        for message in unknown_options(raw or {}, type(model), prefix):
            check.warning(message)
