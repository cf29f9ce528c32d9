"""Datadog's own validators on this repository: `ddev validate config`, `models`, `metadata` and
`service-checks`, each as ddev runs it on an integrations repository.

ddev expects one directory per integration (manifest.json, metadata.csv, assets/service_checks.json,
assets/configuration/spec.yaml, datadog_checks/<name>/data/conf.yaml.example and .../config_models/). This project
keeps one package and top-level files instead, so each run lays that tree out in a temporary directory from the
committed files, runs ddev there, and (with --sync) copies back what ddev's generators wrote:

  pettwin_checks/<package>/manifest.json                  -> <check>/manifest.json
  pettwin_checks/<package>/assets/configuration/spec.yaml -> <check>/assets/configuration/spec.yaml
  conf.d/<check>.d/conf.yaml.example                      <-> <check>/datadog_checks/<check>/data/
  pettwin_checks/<package>/config_models/*.py             <-> <check>/datadog_checks/<check>/config_models/
  metadata.csv rows whose `integration` is <check>        -> <check>/metadata.csv
  service_checks.json entries of the check's display name -> <check>/assets/service_checks.json
  README.md, CHANGELOG.md (the manifests link to them)     -> <check>/README.md, <check>/CHANGELOG.md

The generated models' header names the command that regenerates them here (scripts/sync-config), not ddev's
`ddev -x validate ...`, which finds no integration at this repository's root: the header is swapped on the way in
and out, so ddev compares its own output.

    python scripts/ddev_validate.py          # validate; exit 1 on any failure (the test suite runs this)
    python scripts/ddev_validate.py --sync   # regenerate conf.yaml.example and config_models from the specs

Run with the tools venv's interpreter (scripts/sync-config), next to the ddev it runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKS = {"pettwin_kafka_lag": "kafka_lag", "pettwin_vertex_ai": "vertex_ai", "pettwin_cloud_run": "cloud_run"}
VALIDATIONS = ("config", "models", "metadata", "service-checks", "readmes")
SYNCED = ("config", "models")  # the validations whose --sync writes generated files
DDEV = Path(sys.executable).parent / "ddev"
DDEV_HEADER = """# To change this file you should edit assets/configuration/spec.yaml and then run the following commands:
#     ddev -x validate config -s <INTEGRATION_NAME>
#     ddev -x validate models -s <INTEGRATION_NAME>
"""
HEADER = """# To change this file you should edit assets/configuration/spec.yaml and then run, at the repository root:
#     scripts/sync-config
"""


def copy_text(source: Path, target: Path, old: str, new: str) -> None:
    target.write_text(source.read_text().replace(old, new, 1))


def lay_out(repo: Path, root: Path) -> None:
    metadata = list(csv.DictReader((root / "metadata.csv").open(newline="")))
    service_checks = json.loads((root / "service_checks.json").read_text())
    for check, package in CHECKS.items():
        source = root / "pettwin_checks" / package
        target = repo / check
        code = target / "datadog_checks" / check
        manifest = json.loads((source / "manifest.json").read_text())
        (target / "assets" / "configuration").mkdir(parents=True)
        (code / "data").mkdir(parents=True)
        shutil.copy(source / "manifest.json", target / "manifest.json")
        shutil.copy(source / "assets" / "configuration" / "spec.yaml", target / "assets" / "configuration")
        shutil.copy(root / "pettwin_checks" / "__about__.py", code / "__about__.py")
        shutil.copy(root / "conf.d" / f"{check}.d" / "conf.yaml.example", code / "data")
        (code / "config_models").mkdir()
        for model in (source / "config_models").glob("*.py"):
            copy_text(model, code / "config_models" / model.name, HEADER, DDEV_HEADER)
        for page in ("README.md", "CHANGELOG.md"):
            shutil.copy(root / page, target / page)

        rows = [row for row in metadata if row["integration"] == check]
        with (target / "metadata.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(metadata[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        name = manifest["assets"]["integration"]["source_type_name"]
        prefix = manifest["assets"]["integration"]["metrics"]["prefix"]
        entries = [entry for entry in service_checks if entry["check"].startswith(prefix)]
        (target / "assets" / "service_checks.json").write_text(json.dumps(entries, indent=4) + "\n")
        if not rows or not entries:
            raise SystemExit(f"{check}: no metadata.csv row or service check of {name} ({prefix}*)")


def copy_back(repo: Path, root: Path) -> list[str]:
    written = []
    for check, package in CHECKS.items():
        code = repo / check / "datadog_checks" / check
        pairs = [(code / "data" / "conf.yaml.example", root / "conf.d" / f"{check}.d" / "conf.yaml.example")]
        pairs += [
            (generated, root / "pettwin_checks" / package / "config_models" / generated.name)
            for generated in sorted((code / "config_models").glob("*.py"))
        ]
        for generated, committed in pairs:
            text = generated.read_text().replace(DDEV_HEADER, HEADER, 1)
            if not committed.exists() or committed.read_text() != text:
                committed.write_text(text)
                written.append(str(committed.relative_to(root)))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sync", action="store_true", help="regenerate conf.yaml.example and config_models")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project's checkout (default: this one)")
    arguments = parser.parse_args()
    sync, root = arguments.sync, arguments.root.resolve()

    failed = []
    with tempfile.TemporaryDirectory(prefix="pettwin-ddev-") as directory:
        repo = Path(directory)
        lay_out(repo, root)
        subprocess.run(["git", "init", "--quiet", str(repo)], check=True)  # ddev --here wants a repository
        for validation in VALIDATIONS:
            command = [
                str(DDEV),
                "--here",
                "validate",
                validation,
                *(["--sync"] if sync and validation in SYNCED else []),
            ]
            result = subprocess.run(command, cwd=repo, capture_output=True, check=False, text=True, timeout=600)
            print(
                f"$ ddev validate {validation}{' --sync' if '--sync' in command else ''}\n{result.stdout}{result.stderr}"
            )
            if result.returncode:
                failed.append(validation)
        if sync:
            for path in copy_back(repo, root):
                print(f"wrote {path}")
    if failed:
        print(f"ddev validate failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
