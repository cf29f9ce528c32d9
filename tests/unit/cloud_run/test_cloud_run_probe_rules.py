"""Status rules of the app probes: thresholds, startup grace period, messages."""

from __future__ import annotations

import pytest

from pettwin_checks.cloud_run.probes import (
    ProbeResult,
    ProbeSpec,
    ProbeState,
    format_status_ranges,
    judge,
    parse_status_ranges,
    status_expected,
)

pytestmark = pytest.mark.unit

SPEC = ProbeSpec(
    name="liveness",
    kind="http",
    host="127.0.0.1",
    port=8080,
    timeout=1.0,
    failure_threshold=3,
    startup_grace_period=30.0,
    path="/healthz",
)
FAIL = ProbeResult(False, 0.002, 503, "HTTP 503 Service Unavailable (expected 200-399)")
OK = ProbeResult(True, 0.002, 200)


def test_failures_warn_until_threshold_then_critical():
    state = ProbeState(ever_succeeded=True)
    verdicts = [judge(SPEC, FAIL, state, 100.0) for _ in range(4)]
    assert [v.status for v in verdicts] == ["warning", "warning", "critical", "critical"]
    assert verdicts[0].message == (
        "liveness probe GET http://127.0.0.1:8080/healthz failed: HTTP 503 Service Unavailable (expected 200-399) "
        "(1 of 3 consecutive failures)"
    )
    assert verdicts[3].message.endswith("(4 consecutive failures)")
    assert state.consecutive_failures == 4
    assert judge(SPEC, OK, state, 100.0).status == "ok"
    assert state.consecutive_failures == 0


def test_grace_period_only_before_first_success():
    state = ProbeState()
    spec = ProbeSpec(**{**SPEC.__dict__, "failure_threshold": 1})
    verdict = judge(spec, FAIL, state, 12.0)
    assert verdict.status == "warning"
    assert verdict.message.endswith("(app starting: 18 s of the startup grace period left)")
    assert judge(spec, FAIL, state, 31.0).status == "critical"  # grace over
    judge(spec, OK, state, 32.0)
    assert judge(spec, FAIL, ProbeState(ever_succeeded=True), 5.0).status == "critical"  # started once: no grace
    assert judge(spec, FAIL, state, 33.0).status == "critical"


def test_unknown_start_means_no_grace():
    spec = ProbeSpec(**{**SPEC.__dict__, "failure_threshold": 1})
    assert judge(spec, FAIL, ProbeState(), None).status == "critical"


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        ("200-399", ((200, 399),)),
        ("200, 204", ((200, 200), (204, 204))),
        ("200-299,304", ((200, 299), (304, 304))),
    ],
)
def test_status_ranges(text, ranges):
    assert parse_status_ranges(text) == ranges
    assert format_status_ranges(ranges) == text.replace(" ", "")


@pytest.mark.parametrize("text", ["", "abc", "399-200", "200-700", "99"])
def test_bad_status_ranges(text):
    with pytest.raises(ValueError):
        parse_status_ranges(text)


def test_status_expected():
    ranges = parse_status_ranges("200-299,304")
    assert status_expected(204, ranges) and status_expected(304, ranges)
    assert not status_expected(301, ranges) and not status_expected(503, ranges)


def test_tcp_target():
    assert ProbeSpec(name="startup", kind="tcp", host="::1", port=9, timeout=1).target == "TCP [::1]:9"
