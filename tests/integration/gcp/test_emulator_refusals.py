"""The emulator refuses what Google refuses, with Google's error body (unknown parameters and fields from the
discovery documents, the Monitoring and Run rules Google documents), and accepts what Google accepts."""

import statistics
import time

import pytest
import requests

from tests.integration.gcp.emulator_calls import (
    INVOCATIONS,
    LATENCIES,
    bad_request,
    bearer,
    count_tokens_url,
    list_series,
    rfc3339,
    series_params,
    services_url,
)

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------- discovery-document validation

UNKNOWN_QUERY = (
    'Invalid JSON payload received. Unknown name "{0}": Cannot bind query parameter. '
    "Field '{0}' could not be found in request message."
)


def test_unknown_query_parameter_is_refused_with_googles_body(gcp_env):
    """A misspelt parameter (groupByField for groupByFields) is not silently ignored."""
    answer = list_series(gcp_env, series_params(**{"aggregation.groupByField": "metric.label.x"}))
    assert bad_request(answer) == [{"description": UNKNOWN_QUERY.format("aggregation.groupByField")}]
    answer = requests.get(
        services_url(gcp_env), params={"page_size": "5"}, timeout=5, headers=bearer(gcp_env.issue_access_token())
    )
    assert bad_request(answer) == [{"description": UNKNOWN_QUERY.format("page_size")}]


def test_standard_query_parameters_are_accepted(gcp_env):
    answer = list_series(gcp_env, series_params(prettyPrint="false", alt="json", quotaUser="pettwin"))
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "name, value, proto",
    [
        ("pageSize", "ten", "page_size' (TYPE_INT32)"),
        (
            "aggregation.perSeriesAligner",
            "ALIGN_AVERAGE",
            "aggregation.per_series_aligner' (type.googleapis.com/google.monitoring.v3.Aggregation.Aligner)",
        ),
        ("view", "ALL", "view' (type.googleapis.com/google.monitoring.v3.ListTimeSeriesRequest.TimeSeriesView)"),
    ],
)
def test_query_values_of_the_wrong_type_or_enum(gcp_env, name, value, proto):
    (violation,) = bad_request(list_series(gcp_env, series_params(**{name: value})))
    assert violation["description"] == f'Invalid value at \'{proto}, "{value}"'


def test_order_by_must_be_left_blank(gcp_env):
    """orderBy is "Unsupported: must be left blank"."""
    (violation,) = bad_request(list_series(gcp_env, series_params(orderBy="metric.type")))
    assert violation["field"] == "orderBy"


@pytest.mark.parametrize(
    "body, violation",
    [
        (
            {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfg": {}},
            {"description": 'Invalid JSON payload received. Unknown name "generationConfg": Cannot find field.'},
        ),
        (
            {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"maxTokens": 1}},
            {
                "field": "generation_config",
                "description": 'Invalid JSON payload received. Unknown name "maxTokens" at '
                "'generation_config': Cannot find field.",
            },
        ),
        (
            {"contents": [{"role": "user", "parts": [{"txt": "hi"}]}]},
            {
                "field": "contents[0].parts[0]",
                "description": 'Invalid JSON payload received. Unknown name "txt" at '
                "'contents[0].parts[0]': Cannot find field.",
            },
        ),
        (
            {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": "x"}},
            {
                "field": "generation_config.max_output_tokens",
                "description": "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), \"x\"",
            },
        ),
    ],
)
@pytest.mark.parametrize("method", ["countTokens", "generateContent"])
def test_unknown_or_mistyped_body_fields_are_refused(gcp_env, body, violation, method):
    """Vertex AI refuses a body with a field its request message does not have."""
    url = count_tokens_url(gcp_env).replace(":countTokens", f":{method}")
    answer = requests.post(url, json=body, headers=bearer(gcp_env.issue_access_token()), timeout=5)
    assert bad_request(answer) == [violation]


def test_proto_field_names_are_accepted_in_bodies(gcp_env):
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generation_config": {"max_output_tokens": 1}}
    url = count_tokens_url(gcp_env).replace(":countTokens", ":generateContent")
    answer = requests.post(url, json=body, headers=bearer(gcp_env.issue_access_token()), timeout=5)
    assert answer.status_code == 200, answer.text


# ---------------------------------------------------------------- what Google refuses


@pytest.mark.parametrize(
    "metric_filter",
    [
        f'metric.type = "{INVOCATIONS}" OR metric.type = "{LATENCIES}"',
        'metric.type = starts_with("aiplatform.googleapis.com/")',
        f'metric.type = one_of("{INVOCATIONS}")',
        f'metric.type != "{INVOCATIONS}"',
    ],
)
def test_filter_must_name_a_single_metric_type(gcp_env, metric_filter):
    (violation,) = bad_request(list_series(gcp_env, series_params(filter=metric_filter)))
    assert violation["field"] == "filter" and "single metric type" in violation["description"]


@pytest.mark.parametrize(
    "metric, aligner",
    [
        (LATENCIES, "ALIGN_MEAN"),  # numeric values only
        (LATENCIES, "ALIGN_STDDEV"),
        ("run.googleapis.com/container/instance_count", "ALIGN_DELTA"),  # GAUGE
    ],
)
def test_aligner_not_valid_for_the_metric(gcp_env, metric, aligner):
    params = series_params(
        filter=f'metric.type = "{metric}"',
        **{"aggregation.perSeriesAligner": aligner, "aggregation.alignmentPeriod": "60s"},
    )
    (violation,) = bad_request(list_series(gcp_env, params))
    assert violation["field"] == "aggregation.perSeriesAligner"


def test_next_older_is_for_gauges_only(gcp_env):
    gcp_env.load_scenario("""
series:
  - metric: custom.googleapis.com/total
    resource: {type: global}
    kind: CUMULATIVE
    value_type: INT64
    values: 1
""")
    params = series_params(
        filter='metric.type = "custom.googleapis.com/total"',
        **{"aggregation.perSeriesAligner": "ALIGN_NEXT_OLDER", "aggregation.alignmentPeriod": "60s"},
    )
    bad_request(list_series(gcp_env, params))
    params["aggregation.perSeriesAligner"] = "ALIGN_DELTA"
    assert list_series(gcp_env, params).status_code == 200


def test_negative_page_size(gcp_env):
    (violation,) = bad_request(list_series(gcp_env, series_params(pageSize="-1")))
    assert violation["field"] == "pageSize"
    # proto3 cannot tell pageSize=0 from no pageSize: the maximum page.
    assert list_series(gcp_env, series_params(pageSize="0")).status_code == 200


def test_alignment_period_over_104_weeks(gcp_env):
    params = series_params(
        **{"aggregation.perSeriesAligner": "ALIGN_DELTA", "aggregation.alignmentPeriod": f"{104 * 7 * 86400 + 60}s"}
    )
    (violation,) = bad_request(list_series(gcp_env, params))
    assert violation["field"] == "aggregation.alignmentPeriod"
    params["aggregation.alignmentPeriod"] = f"{104 * 7 * 86400}s"
    assert list_series(gcp_env, params).status_code == 200


def test_services_list_refuses_the_location_wildcard(gcp_env):
    answer = requests.get(services_url(gcp_env, location="-"), headers=bearer(gcp_env.issue_access_token()), timeout=5)
    (violation,) = bad_request(answer)
    assert violation["field"] == "parent" and '"-"' in violation["description"]


# ---------------------------------------------------------------- what Google accepts


def _aggregated(emulator, metric, aligner, reducer, *, metric_filter="", group_by=()) -> list[dict]:
    end = (int(time.time() // 60) - 1) * 60
    params = {
        "filter": f'metric.type = "{metric}"{metric_filter}',
        "interval.startTime": rfc3339(end - 60),
        "interval.endTime": rfc3339(end),
        "aggregation.alignmentPeriod": "60s",
        "aggregation.perSeriesAligner": aligner,
        "aggregation.crossSeriesReducer": reducer,
        "aggregation.groupByFields": list(group_by),
    }
    answer = list_series(emulator, params)
    assert answer.status_code == 200, answer.text
    return answer.json()["timeSeries"]


def _minute_values(emulator, metric, **labels) -> list[float]:
    minute = int(time.time() // 60) - 2
    return [
        s.value_at_minute(minute)
        for s in emulator.series(metric, labels or None)
        if s.value_at_minute(minute) is not None
    ]


def test_percentile_reducer_on_numeric_series(gcp_env):
    (series,) = _aggregated(gcp_env, INVOCATIONS, "ALIGN_DELTA", "REDUCE_PERCENTILE_50")
    ordered = sorted(_minute_values(gcp_env, INVOCATIONS))
    middle = (len(ordered) - 1) / 2
    expected = (ordered[int(middle)] + ordered[-(-int(middle * 2) // 2)]) / 2 if ordered else None
    assert series["valueType"] == "DOUBLE"
    assert series["points"][0]["value"]["doubleValue"] == pytest.approx(expected)


def test_numeric_comparison_on_labels(gcp_env):
    by_code = ["metric.label.response_code"]
    series = _aggregated(
        gcp_env,
        INVOCATIONS,
        "ALIGN_DELTA",
        "REDUCE_SUM",
        metric_filter=" AND metric.label.response_code >= 400",
        group_by=by_code,
    )
    assert {s["metric"]["labels"]["response_code"] for s in series} == {"429", "500"}
    series = _aggregated(
        gcp_env,
        INVOCATIONS,
        "ALIGN_DELTA",
        "REDUCE_SUM",
        metric_filter=" AND metric.label.response_code < 300",
        group_by=by_code,
    )
    assert {s["metric"]["labels"]["response_code"] for s in series} == {"200"}


def test_stddev_reducer_and_aligner(gcp_env):
    (series,) = _aggregated(gcp_env, INVOCATIONS, "ALIGN_DELTA", "REDUCE_STDDEV")
    assert series["points"][0]["value"]["doubleValue"] == pytest.approx(
        statistics.pstdev(_minute_values(gcp_env, INVOCATIONS))
    )
    aligned = _aggregated(gcp_env, "run.googleapis.com/container/instance_count", "ALIGN_STDDEV", "REDUCE_NONE")
    assert {s["points"][0]["value"]["doubleValue"] for s in aligned} == {0.0}  # one point per 60 s window


def test_boolean_reducers(gcp_env):
    metric = "serviceruntime.googleapis.com/quota/exceeded"
    flags = [bool(v) for v in _minute_values(gcp_env, metric)]
    for reducer, expected in (("REDUCE_COUNT_TRUE", sum(flags)), ("REDUCE_COUNT_FALSE", len(flags) - sum(flags))):
        (series,) = _aggregated(gcp_env, metric, "ALIGN_NEXT_OLDER", reducer)
        assert int(series["points"][0]["value"]["int64Value"]) == expected
    (series,) = _aggregated(gcp_env, metric, "ALIGN_NEXT_OLDER", "REDUCE_FRACTION_TRUE")
    assert series["points"][0]["value"]["doubleValue"] == pytest.approx(sum(flags) / len(flags))
