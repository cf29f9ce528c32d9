"""Scenario files: the project identity, the declared time series, Cloud Run services and Vertex AI models.

See the package docstring for the YAML format.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .descriptors import series_problem
from .distribution import BucketOptions, Distribution

SCENARIO_DIR = Path(__file__).parent / "scenarios"
METRIC_KINDS = {"GAUGE", "DELTA", "CUMULATIVE"}
VALUE_TYPES = {"INT64", "DOUBLE", "BOOL", "DISTRIBUTION"}
# Metric types Google samples less often than every minute (Cloud Monitoring's metric list): quota limits are
# "Sampled every 86400 seconds"; an unchanged allocation usage is "repeated at least every 24 hours".
GOOGLE_SAMPLE_MINUTES = {
    "serviceruntime.googleapis.com/quota/limit": 1440,
    "serviceruntime.googleapis.com/quota/allocation/usage": 1440,
}
DEFAULT_SAMPLE_AGE_MINUTES = 360


class ScenarioError(ValueError):
    pass


@dataclass
class SeriesSpec:
    metric_type: str
    metric_labels: dict[str, str]
    resource_type: str
    resource_labels: dict[str, str]
    kind: str
    value_type: str
    unit: str
    values: list  # per-minute values, indexed by epoch minute modulo len; None means no point that minute
    buckets: BucketOptions | None = None
    history_minutes: int | None = None  # how far back this series' points exist (None: the scenario's)
    # A series Google samples less often than every minute (quota limits: daily) has a point only every
    # `every_minutes`, the minutes being counted from `sample_minute` (an epoch minute holding a point).
    every_minutes: int = 1
    sample_minute: int = 0

    def sampled_at(self, epoch_minute: int) -> bool:
        return self.every_minutes == 1 or (epoch_minute - self.sample_minute) % self.every_minutes == 0

    def value_at_minute(self, epoch_minute: int):
        """The value of the point covering [epoch_minute*60, epoch_minute*60+60), or None when there is none."""
        raw = self.values[epoch_minute % len(self.values)]
        if raw is None:
            return None
        if self.value_type == "DISTRIBUTION":
            return Distribution.from_counts(self.buckets, raw)
        if self.value_type == "INT64":
            return int(raw)
        if self.value_type == "DOUBLE":
            return float(raw)
        return bool(raw)

    def sum_of_minutes(self, first_minute: int, last_minute: int) -> int | float:
        """Sum of the values of minutes first..last inclusive (a CUMULATIVE series' running total)."""
        if last_minute < first_minute:
            return 0
        numbers = [v or 0 for v in self.values]
        period = len(numbers)
        span = last_minute - first_minute + 1
        full_cycles, remainder = divmod(span, period)
        total = full_cycles * sum(numbers)
        for offset in range(remainder):
            total += numbers[(first_minute + offset) % period]
        return total


@dataclass
class Scenario:
    name: str
    project_id: str
    project_number: str
    region: str
    zone: str
    instance_id: str
    service_account: str
    history_minutes: int
    loaded_minute: int  # epoch minute the scenario was parsed in (sampling phases count from it)
    series: list[SeriesSpec] = field(default_factory=list)
    run_services: list[dict] = field(default_factory=list)
    vertex_models: list[str] = field(default_factory=list)


def _labels(raw, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: labels must be a mapping")
    # Label values are strings on the wire, booleans included ("true"/"false").
    return {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in raw.items()}


def _sampling(raw: dict, kind: str, where: str, loaded_minute: int) -> dict:
    """`every_minutes` and `newest_minutes_ago` (how old the newest point was when the scenario was loaded).

    Series Google samples less than once a minute get Google's cadence unless the scenario sets one, and then
    their newest point is hours old, as it mostly is for a query at a random time.
    """
    every = int(raw.get("every_minutes", GOOGLE_SAMPLE_MINUTES.get(raw["metric"], 1)))
    if every < 1 or every > 1 and kind != "GAUGE":
        raise ScenarioError(f"{where}: every_minutes must be >= 1, and above 1 only for GAUGE series")
    newest_ago = int(raw.get("newest_minutes_ago", min(DEFAULT_SAMPLE_AGE_MINUTES, every - 1)))
    if not 0 <= newest_ago < every:
        raise ScenarioError(f"{where}: newest_minutes_ago must be in [0, every_minutes)")
    history = raw.get("history_minutes")
    if history is None and every > 1:
        history = 2 * every + newest_ago  # always at least two samples
    # The point of minute m ends at (m + 1) * 60; the newest one ended `newest_ago` minutes before loading.
    return {
        "every_minutes": every,
        "sample_minute": loaded_minute - 1 - newest_ago,
        "history_minutes": int(history) if history is not None else None,
    }


def _series(raw: dict, index: int, loaded_minute: int) -> SeriesSpec:
    where = f"series[{index}]"
    try:
        metric_type = raw["metric"]
        resource = raw["resource"]
        kind = raw["kind"]
        value_type = raw["value_type"]
        values = raw["values"]
    except (KeyError, TypeError) as missing:
        raise ScenarioError(f"{where}: missing key {missing}") from None
    if kind not in METRIC_KINDS:
        raise ScenarioError(f"{where}: kind must be one of {sorted(METRIC_KINDS)}")
    if value_type not in VALUE_TYPES:
        raise ScenarioError(f"{where}: value_type must be one of {sorted(VALUE_TYPES)}")
    buckets = None
    if value_type == "DISTRIBUTION":
        try:
            buckets = BucketOptions.from_spec(raw.get("buckets"))
        except (ValueError, KeyError, TypeError) as bad:
            raise ScenarioError(f"{where}: {bad}") from None
        # A flat list of numbers is one bucket-count vector repeated every minute.
        if isinstance(values, list) and values and all(isinstance(v, (int, float)) for v in values):
            values = [values]
        if not isinstance(values, list) or not all(v is None or isinstance(v, list) for v in values):
            raise ScenarioError(f"{where}: distribution values must be bucket-count lists")
        for counts in values:
            if counts is not None and len(counts) > buckets.num_buckets:
                raise ScenarioError(f"{where}: {len(counts)} bucket counts exceed {buckets.num_buckets} buckets")
    else:
        if not isinstance(values, list):
            values = [values]
        if any(isinstance(v, (list, dict)) for v in values):
            raise ScenarioError(f"{where}: scalar series values must be numbers (or null)")
    if not values:
        raise ScenarioError(f"{where}: values must not be empty")
    if kind == "CUMULATIVE" and value_type not in {"INT64", "DOUBLE"}:
        raise ScenarioError(f"{where}: CUMULATIVE series must be INT64 or DOUBLE")
    problem = series_problem(str(metric_type), str((resource or {}).get("type")), kind, value_type)
    if problem:
        raise ScenarioError(f"{where}: {problem}")
    return SeriesSpec(
        metric_type=str(metric_type),
        metric_labels=_labels(raw.get("labels"), where),
        resource_type=str(resource.get("type")),
        resource_labels=_labels(resource.get("labels"), where),
        kind=kind,
        value_type=value_type,
        unit=str(raw.get("unit", "1")),
        values=list(values),
        buckets=buckets,
        **_sampling(raw, kind, where, loaded_minute),
    )


def _document(text: str, name: str, seen: tuple[str, ...] = ()) -> dict:
    """The scenario's YAML mapping with `extends: BASE` resolved: a child series replaces the base series with
    the same metric type, resource and metric labels, other child series are appended; every other top-level
    key of the child replaces the base's."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as bad:
        raise ScenarioError(f"scenario {name}: invalid YAML: {bad}") from None
    if not isinstance(doc, dict):
        raise ScenarioError(f"scenario {name}: top level must be a mapping")
    base_name = doc.pop("extends", None)
    if base_name is None:
        return doc
    base_path = SCENARIO_DIR / f"{base_name}.yaml"
    if base_name in seen or not base_path.is_file():
        raise ScenarioError(f"scenario {name}: cannot extend {base_name!r}")
    merged = _document(base_path.read_text(), base_name, seen + (name,))
    child_series = doc.pop("series", None) or []
    merged.update(doc)
    replaced = {_identity(raw): raw for raw in child_series}
    kept = [raw for raw in merged.get("series") or [] if _identity(raw) not in replaced]
    merged["series"] = kept + child_series
    return merged


def _identity(raw) -> str:
    if not isinstance(raw, dict):
        return repr(raw)
    resource = raw.get("resource") or {}
    return repr(
        (
            raw.get("metric"),
            resource.get("type"),
            sorted(_labels(resource.get("labels"), "extends").items()),
            sorted(_labels(raw.get("labels"), "extends").items()),
        )
    )


def parse(text: str, name: str = "inline") -> Scenario:
    doc = _document(text, name)
    project = doc.get("project") or {}
    project_id = str(project.get("id", "pettwin-demo"))
    region = str(project.get("region", "us-central1"))
    scenario = Scenario(
        name=name,
        project_id=project_id,
        project_number=str(project.get("number", "412345678901")),
        region=region,
        zone=str(project.get("zone", f"{region}-1")),
        instance_id=str(project.get("instance_id", "0087244a8f2e4d5d9f6c3b1e0a7c4d2b")),
        service_account=str(project.get("service_account", f"pettwin-agent@{project_id}.iam.gserviceaccount.com")),
        history_minutes=int(doc.get("history_minutes", 180)),
        loaded_minute=int(time.time() // 60),
    )
    scenario.series = [_series(raw, i, scenario.loaded_minute) for i, raw in enumerate(doc.get("series") or [])]
    cloud_run = doc.get("cloud_run") or {}
    scenario.run_services = copy.deepcopy(cloud_run.get("services") or [])
    for service in scenario.run_services:
        if "name" not in service or not service.get("revisions"):
            raise ScenarioError(f"scenario {name}: each cloud_run service needs a name and revisions")
    vertex = doc.get("vertex") or {}
    scenario.vertex_models = [str(m) for m in vertex.get("models") or []]
    return scenario


def load(name_or_yaml: str) -> Scenario:
    """A scenario by file name under scenarios/ (without .yaml), by path, or inline YAML text."""
    candidate = SCENARIO_DIR / f"{name_or_yaml}.yaml"
    if "\n" not in name_or_yaml and candidate.is_file():
        return parse(candidate.read_text(), name_or_yaml)
    path = Path(name_or_yaml)
    if "\n" not in name_or_yaml and path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise ScenarioError(f"scenario file {path} does not exist")
        return parse(path.read_text(), path.stem)
    if "\n" not in name_or_yaml and ":" not in name_or_yaml:
        known = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
        raise ScenarioError(f"unknown scenario {name_or_yaml!r}; known: {known}")
    return parse(name_or_yaml)
