"""Cloud Monitoring rules the emulator holds requests to, over HTTP, with Google's status and error body: a filter
names exactly one metric type, the metric exists (404 otherwise) and is written for the filter's resource type;
every aligner Google documents is served (ALIGN_INTERPOLATE, ALIGN_PERCENT_CHANGE) and so is secondaryAggregation;
metric and monitored-resource descriptors are served."""

import time

import pytest
import requests

from tests.integration.gcp.emulator_calls import (
    INVOCATIONS,
    LATENCIES,
    bad_request,
    bearer,
    google_error,
    list_series,
    rfc3339,
    series_params,
)

pytestmark = pytest.mark.integration

SINGLE_METRIC_TYPE = 'the filter must specify a single metric type, as metric.type = "TYPE"'


@pytest.mark.parametrize(
    "metric_filter",
    [
        'resource.type = "aiplatform.googleapis.com/PublisherModel"',  # none
        f'metric.type = "{INVOCATIONS}" AND metric.type = "{LATENCIES}"',  # two
        f'metric.type = "{INVOCATIONS}" AND metric.type = "{INVOCATIONS}"',  # named twice
        f'metric.type = "{INVOCATIONS}" OR resource.type = "global"',  # an alternative
        f'resource.type = "global" OR metric.type = "{INVOCATIONS}"',
        f'(metric.type = "{INVOCATIONS}" AND metric.label.response_code = "200") OR metric.label.x = "y"',
        f'NOT metric.type = "{INVOCATIONS}"',
        f'NOT (metric.type = "{INVOCATIONS}")',
    ],
)
def test_a_filter_names_exactly_one_metric_type_anded_with_the_rest(gcp_env, metric_filter):
    (violation,) = bad_request(list_series(gcp_env, series_params(filter=metric_filter)))
    assert violation == {
        "field": "filter",
        "description": f'Field filter had an invalid value of "{metric_filter}": {SINGLE_METRIC_TYPE}',
    }


def test_or_and_not_on_labels_stay_valid_beside_the_metric_type(gcp_env):
    metric_filter = (
        f'metric.type = "{INVOCATIONS}" AND (metric.label.response_code = "200" OR '
        'metric.label.response_code = "429") AND NOT resource.label.model_user_id = "none"'
    )
    answer = list_series(gcp_env, series_params(filter=metric_filter))
    assert answer.status_code == 200, answer.text
    codes = {s["metric"]["labels"]["response_code"] for s in answer.json()["timeSeries"]}
    assert codes == {"200", "429"}


def test_an_unknown_metric_type_is_googles_404(gcp_env):
    metric_filter = 'metric.type = "run.googleapis.com/container/cpu/utilisation"'
    error = google_error(list_series(gcp_env, series_params(filter=metric_filter)), 404, "NOT_FOUND")
    assert error["message"] == (
        'Cannot find metric(s) that match type = "run.googleapis.com/container/cpu/utilisation". If a metric '
        "was created recently, it could take up to 10 minutes to become available."
    )
    assert "details" not in error


def test_a_metric_with_a_resource_type_it_is_not_written_for_is_googles_400(gcp_env):
    metric_filter = f'metric.type = "{INVOCATIONS}" AND resource.type = "cloud_run_revision"'
    (violation,) = bad_request(list_series(gcp_env, series_params(filter=metric_filter)))
    assert violation == {
        "field": "filter",
        "description": f'Field filter had an invalid value of "{metric_filter}": The supplied filter does not '
        "specify a valid combination of metric and monitored resource descriptors. The query will not return "
        "any time series.",
    }
    right = f'metric.type = "{INVOCATIONS}" AND resource.type = "aiplatform.googleapis.com/PublisherModel"'
    assert list_series(gcp_env, series_params(filter=right)).status_code == 200


def test_the_aggregation_is_checked_against_the_descriptor_even_when_no_series_match(gcp_env):
    params = series_params(
        filter=f'metric.type = "{LATENCIES}" AND resource.label.model_user_id = "no-such-model"',
        **{"aggregation.perSeriesAligner": "ALIGN_MEAN", "aggregation.alignmentPeriod": "60s"},
    )
    (violation,) = bad_request(list_series(gcp_env, params))
    assert violation["field"] == "aggregation.perSeriesAligner"


def test_a_scenario_serves_only_metrics_google_describes(gcp_env):
    from pettwin_checks.devenv.gcp_emulator.scenario import ScenarioError

    with pytest.raises(ScenarioError, match="not in descriptors.yaml"):
        gcp_env.load_scenario(
            "series: [{metric: run.googleapis.com/made_up, resource: {type: cloud_run_revision},"
            " kind: DELTA, value_type: INT64, values: 1}]\n"
        )
    with pytest.raises(ScenarioError, match="written for"):
        gcp_env.load_scenario(
            f"series: [{{metric: {INVOCATIONS}, resource: {{type: cloud_run_revision}},"
            " kind: DELTA, value_type: INT64, values: 1}]\n"
        )
    with pytest.raises(ScenarioError, match="is DELTA INT64 at Google"):
        gcp_env.load_scenario(
            f"series: [{{metric: {INVOCATIONS}, resource: "
            "{type: aiplatform.googleapis.com/PublisherModel}, kind: GAUGE, value_type: INT64,"
            " values: 1}]\n"
        )


# ---------------------------------------------------------------- descriptors


def _get(emulator, path, **params):
    return requests.get(
        f"{emulator.url}/v3/projects/{emulator.project_id}/{path}",
        params=params,
        headers=bearer(emulator.issue_access_token()),
        timeout=5,
    )


def test_metric_descriptors_get_and_list(gcp_env):
    answer = _get(gcp_env, f"metricDescriptors/{INVOCATIONS}")
    assert answer.status_code == 200, answer.text
    descriptor = answer.json()
    assert descriptor["name"] == f"projects/{gcp_env.project_id}/metricDescriptors/{INVOCATIONS}"
    assert (descriptor["metricKind"], descriptor["valueType"]) == ("DELTA", "INT64")
    assert descriptor["monitoredResourceTypes"] == ["aiplatform.googleapis.com/PublisherModel"]
    assert {"key": "response_code"} in descriptor["labels"]

    listed = _get(gcp_env, "metricDescriptors", filter='metric.type = starts_with("run.googleapis.com/")').json()
    types = {d["type"] for d in listed["metricDescriptors"]}
    assert "run.googleapis.com/container/completed_probe_count" in types
    assert all(t.startswith("run.googleapis.com/") for t in types)

    error = google_error(_get(gcp_env, "metricDescriptors/run.googleapis.com/nothing"), 404, "NOT_FOUND")
    assert "run.googleapis.com/nothing" in error["message"]


def test_every_metric_the_scenarios_serve_is_described(gcp_env):
    from pettwin_checks.devenv.gcp_emulator.scenario import SCENARIO_DIR

    described = {d["type"] for d in _get(gcp_env, "metricDescriptors").json()["metricDescriptors"]}
    for path in SCENARIO_DIR.glob("*.yaml"):
        gcp_env.load_scenario(path.stem)
        served = {s.metric_type for s in gcp_env.scenario.series}
        assert served <= described, (path.stem, served - described)


def test_monitored_resource_descriptors_list(gcp_env):
    listed = _get(gcp_env, "monitoredResourceDescriptors").json()["resourceDescriptors"]
    by_type = {d["type"]: [label["key"] for label in d["labels"]] for d in listed}
    assert by_type["cloud_run_revision"] == [
        "project_id",
        "service_name",
        "revision_name",
        "location",
        "configuration_name",
    ]
    assert "aiplatform.googleapis.com/PublisherModel" in by_type


# ---------------------------------------------------------------- every aligner, and secondaryAggregation

GAUGE_SCENARIO = """
series:
  - metric: custom.googleapis.com/queue_depth
    resource: {type: global}
    kind: GAUGE
    value_type: DOUBLE
    values: [0, 100, 0, 100, 0, 100, 0, 100, 0, 100, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]
"""


def _gauge(emulator, aligner, period, start, end):
    params = {
        "filter": 'metric.type = "custom.googleapis.com/queue_depth"',
        "interval.startTime": rfc3339(start),
        "interval.endTime": rfc3339(end),
        "aggregation.perSeriesAligner": aligner,
        "aggregation.alignmentPeriod": f"{period}s",
    }
    answer = list_series(emulator, params)
    assert answer.status_code == 200, answer.text
    (series,) = answer.json()["timeSeries"]
    return series


def test_align_interpolate_is_linear_between_the_points_around_the_window_end(gcp_env):
    gcp_env.load_scenario(GAUGE_SCENARIO)
    (spec,) = gcp_env.series("custom.googleapis.com/queue_depth")
    boundary = (int(time.time() // 60) - 3) * 60  # a point ends here, and another 60 s later
    series = _gauge(gcp_env, "ALIGN_INTERPOLATE", 60, boundary - 30, boundary + 30)
    before, after = spec.value_at_minute(boundary // 60 - 1), spec.value_at_minute(boundary // 60)
    assert series["metricKind"] == "GAUGE" and series["valueType"] == "DOUBLE"
    assert series["points"][0]["interval"]["endTime"] == rfc3339(boundary + 30)
    assert series["points"][0]["value"]["doubleValue"] == pytest.approx((before + after) / 2)


def test_align_percent_change_compares_ten_minute_means_one_period_apart(gcp_env):
    gcp_env.load_scenario(GAUGE_SCENARIO)
    (spec,) = gcp_env.series("custom.googleapis.com/queue_depth")
    end = (int(time.time() // 60) - 1) * 60
    series = _gauge(gcp_env, "ALIGN_PERCENT_CHANGE", 600, end - 600, end)

    def mean(t):  # the points ending in (t - 600, t]
        return sum(spec.value_at_minute(m) for m in range(t // 60 - 10, t // 60)) / 10

    current, previous = mean(end), mean(end - 600)
    assert (series["valueType"], series["unit"]) == ("DOUBLE", "10^2.%")
    assert series["points"][0]["value"]["doubleValue"] == pytest.approx((current - previous) / previous * 100)


def test_secondary_aggregation_applies_to_what_the_first_made(gcp_env):
    end = (int(time.time() // 60) - 1) * 60
    params = {
        **series_params(),
        "interval.startTime": rfc3339(end - 300),
        "interval.endTime": rfc3339(end),
        "aggregation.perSeriesAligner": "ALIGN_DELTA",
        "aggregation.alignmentPeriod": "60s",
        "aggregation.crossSeriesReducer": "REDUCE_SUM",
        "aggregation.groupByFields": "metric.label.response_code",
        "secondaryAggregation.perSeriesAligner": "ALIGN_SUM",
        "secondaryAggregation.alignmentPeriod": "300s",
        "secondaryAggregation.crossSeriesReducer": "REDUCE_SUM",
    }
    answer = list_series(gcp_env, params)
    assert answer.status_code == 200, answer.text
    (series,) = answer.json()["timeSeries"]
    expected = sum(
        spec.value_at_minute(minute) or 0
        for spec in gcp_env.series(INVOCATIONS)
        for minute in range(end // 60 - 5, end // 60)
    )
    assert int(series["points"][0]["value"]["int64Value"]) == expected
    assert "labels" not in series["metric"]


def test_aligner_refusals_are_googles_400_never_501(gcp_env):
    for aligner in ("ALIGN_INTERPOLATE", "ALIGN_PERCENT_CHANGE"):
        params = series_params(
            filter=f'metric.type = "{LATENCIES}"',
            **{"aggregation.perSeriesAligner": aligner, "aggregation.alignmentPeriod": "60s"},
        )
        (violation,) = bad_request(list_series(gcp_env, params))  # DISTRIBUTION: numbers only
        assert violation["field"] == "aggregation.perSeriesAligner"
    (violation,) = bad_request(
        list_series(
            gcp_env,
            series_params(
                **{
                    "secondaryAggregation.crossSeriesReducer": "REDUCE_SUM",
                    "secondaryAggregation.perSeriesAligner": "ALIGN_SUM",
                    "secondaryAggregation.alignmentPeriod": "60s",
                }
            ),
        )
    )
    assert violation["field"] == "secondaryAggregation"
