"""Restart detection across runs, and identity tags."""

from __future__ import annotations

import pytest

from pettwin_checks.cloud_run.identity import Identity, identity_tags, resolve
from pettwin_checks.cloud_run.restarts import Baseline, detect_restart
from pettwin_checks.gcp.metadata import last_path_segment

pytestmark = pytest.mark.unit


def test_first_run_sees_no_restart():
    assert detect_restart(None, Baseline(boot_time=100, app_started_at=200)).detected == 0


def test_app_process_started_anew():
    restart = detect_restart(Baseline(boot_time=100, app_started_at=200), Baseline(boot_time=100, app_started_at=500))
    assert (restart.detected, restart.reason) == (1, "the app process started anew")
    assert (
        detect_restart(
            Baseline(boot_time=100, app_started_at=200), Baseline(boot_time=100.4, app_started_at=200.5)
        ).detected
        == 0
    )


def test_new_boot_is_a_new_instance_not_a_restart():
    assert (
        detect_restart(
            Baseline(boot_time=100, app_started_at=200), Baseline(boot_time=9000, app_started_at=9100)
        ).detected
        == 0
    )


def test_baseline_round_trip_and_garbage():
    baseline = Baseline(boot_time=1.5, app_started_at=2.5, restarts_total=4)
    assert Baseline.loads(baseline.dumps()) == baseline
    assert Baseline.loads("") is None
    assert Baseline.loads("{not json") is None
    assert Baseline.loads('{"restarts_total": 2, "unknown": 1}') == Baseline(restarts_total=2)


def test_identity_precedence_and_tags():
    identity = resolve(
        configured={"location": "europe-west1", "service_name": None},
        environ={
            "K_SERVICE": "pettwin-backend",
            "K_REVISION": "pettwin-backend-00042-abc",
            "K_CONFIGURATION": "pettwin-backend",
            "PORT": "8080",
        },
        metadata={"project_id": "pettwin-prod", "location": "us-central1", "instance_id": "00bf4b"},
    )
    assert identity == Identity(
        "pettwin-prod", "europe-west1", "pettwin-backend", "pettwin-backend-00042-abc", "pettwin-backend", "00bf4b"
    )
    assert identity.on_cloud_run
    assert identity_tags(identity, with_instance_id=False) == [
        "project_id:pettwin-prod",
        "location:europe-west1",
        "service_name:pettwin-backend",
        "revision_name:pettwin-backend-00042-abc",
        "configuration_name:pettwin-backend",
    ]
    assert identity_tags(identity, with_instance_id=True)[-1] == "instance_id:00bf4b"
    assert not resolve({}, {}, {}).on_cloud_run


def test_region_from_metadata():
    assert last_path_segment("projects/412345678901/regions/us-central1") == "us-central1"
