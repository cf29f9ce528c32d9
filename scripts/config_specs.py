"""Each check's config spec is the one source of its conf.yaml.example and its config_models.

Runs the generators `ddev validate config --sync` and `ddev validate models --sync` run (datadog_checks_dev's
ConfigSpec, ExampleConsumer and ModelConsumer) on this repository's layout, which is not
integrations-core's: the spec of check <name> is pettwin_checks/<package>/assets/configuration/spec.yaml, its
example conf.d/<name>.d/conf.yaml.example and its models pettwin_checks/<package>/config_models/. validators.py is
the models' hand-written part: created once, never overwritten.

    python scripts/config_specs.py          # fail (exit 1) listing every file that differs from its spec
    python scripts/config_specs.py --sync   # write them

Run by the tools venv's interpreter (scripts/sync-config, and tests/test_config_specs.py in CI), whose ddev pins
the generators' versions.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from datadog_checks.dev.tooling.configuration import ConfigSpec
from datadog_checks.dev.tooling.configuration.consumers import ExampleConsumer, ModelConsumer
from datadog_checks.dev.tooling.constants import set_root
from datadog_checks.dev.tooling.utils import CUSTOM_FILES

ROOT = Path(__file__).resolve().parents[1]
CHECKS = {"pettwin_kafka_lag": "kafka_lag", "pettwin_vertex_ai": "vertex_ai", "pettwin_cloud_run": "cloud_run"}
# Templates the specs share (leader_election, the Google HTTP options), before datadog_checks_dev's own.
TEMPLATES = ROOT / "pettwin_checks" / "config_templates"
CUSTOM_MODEL_FILES = set(CUSTOM_FILES)
MODELS_HEADER = (
    "# This file is generated from {spec} by scripts/sync-config\n"
    "# (datadog_checks_dev's model generator, as `ddev validate models --sync`). Do not edit: change the spec.\n\n"
)


def version() -> str:
    scope: dict = {}
    exec((ROOT / "pettwin_checks" / "__about__.py").read_text(), scope)
    return scope["__version__"]


def expected_files(check: str, package: str) -> tuple[dict[Path, str], list[str]]:
    """{path: contents} the spec generates, and the errors of the spec and of the example it renders."""
    spec_path = ROOT / "pettwin_checks" / package / "assets" / "configuration" / "spec.yaml"
    spec = ConfigSpec(spec_path.read_text(), [str(TEMPLATES)], source=check, version=version())
    spec.load()
    if spec.errors:
        return {}, [f"{spec_path.relative_to(ROOT)}: {error}" for error in spec.errors]

    files: dict[Path, str] = {}
    errors: list[str] = []
    for name, (contents, render_errors) in ExampleConsumer(spec.data).render().items():
        errors.extend(render_errors)
        path = ROOT / "conf.d" / f"{check}.d" / name
        files[path] = contents

    header = MODELS_HEADER.format(spec=spec_path.relative_to(ROOT))
    models = ModelConsumer(spec.data).render()[f"{check}.yaml"]
    for name, (contents, render_errors) in models.items():
        errors.extend(f"{package}/config_models/{name}: {error}" for error in render_errors)
        path = ROOT / "pettwin_checks" / package / "config_models" / name
        if name in CUSTOM_MODEL_FILES:
            if not path.exists():
                files[path] = contents
            continue
        files[path] = header + contents
    return files, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sync", action="store_true", help="write the generated files")
    sync = parser.parse_args().sync
    set_root(str(ROOT))  # the model generator formats with this repository's ruff settings

    failures = []
    for check, package in CHECKS.items():
        files, errors = expected_files(check, package)
        failures.extend(errors)
        for path, contents in files.items():
            current = path.read_text() if path.exists() else None
            if current == contents:
                continue
            if sync:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(contents)
                print(f"wrote {path.relative_to(ROOT)}")
            else:
                diff = "".join(
                    difflib.unified_diff(
                        (current or "").splitlines(True), contents.splitlines(True), "committed", "generated", n=1
                    )
                )
                failures.append(f"{path.relative_to(ROOT)} differs from its spec (run scripts/sync-config):\n{diff}")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
