"""timeSeries.list request building and defensive response parsing."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pettwin_checks.gcp.distribution import Distribution
from pettwin_checks.gcp.timeseries import (
    Aggregation,
    MalformedPage,
    TimeSeriesQuery,
    format_rfc3339,
    label_field,
    merge_pages,
    one_of,
    parse_page,
    parse_rfc3339,
    parse_value,
)

pytestmark = pytest.mark.unit


def test_filter_names_one_metric_type_and_quotes_values():
    query = TimeSeriesQuery(
        "aiplatform.googleapis.com/prediction/online/replicas",
        resource_type="aiplatform.googleapis.com/Endpoint",
        extra_filter=(
            one_of("resource", "location", ["us-east1", "us-central1"]),
            one_of("metric", "weird-label", ['a"b']),
        ),
    )
    assert query.filter == (
        'metric.type = "aiplatform.googleapis.com/prediction/online/replicas" AND '
        'resource.type = "aiplatform.googleapis.com/Endpoint" AND '
        'resource.label.location = one_of("us-central1", "us-east1") AND '
        'metric.label."weird-label" = "a\\"b"'
    )


def test_params_carry_interval_aggregation_repeated_group_by_and_paging():
    query = TimeSeriesQuery("m/t", Aggregation("ALIGN_DELTA", "REDUCE_SUM", ("resource.label.a", "metric.label.b")))
    params = query.params(120.0, 420.0, page_size=50, page_token="tok", period_seconds=300)
    assert params == [
        ("filter", 'metric.type = "m/t"'),
        ("interval.startTime", "1970-01-01T00:02:00Z"),
        ("interval.endTime", "1970-01-01T00:07:00Z"),
        ("aggregation.alignmentPeriod", "300s"),
        ("aggregation.perSeriesAligner", "ALIGN_DELTA"),
        ("aggregation.crossSeriesReducer", "REDUCE_SUM"),
        ("aggregation.groupByFields", "resource.label.a"),
        ("aggregation.groupByFields", "metric.label.b"),
        ("pageSize", "50"),
        ("pageToken", "tok"),
    ]


def test_rfc3339_with_nanoseconds_and_offsets():
    assert parse_rfc3339("2024-05-01T10:00:00.123456789Z") == pytest.approx(1714557600.123456)
    assert parse_rfc3339("2024-05-01T12:00:00+02:00") == 1714557600.0
    assert format_rfc3339(1714557600.0) == "2024-05-01T10:00:00Z"
    with pytest.raises(ValueError):
        parse_rfc3339("2024-05-01T10:00:00")  # no zone
    assert label_field("metric", "response_code") == "metric.label.response_code"


def _point(end, value):
    return {"interval": {"startTime": "2024-05-01T09:55:00Z", "endTime": end}, "value": value}


def test_parse_page_values_and_skips_what_is_malformed():
    body = {
        "timeSeries": [
            {
                "metric": {"type": "m", "labels": {"response_code": "429"}},
                "resource": {"type": "r", "labels": {"location": "us-central1"}},
                "metricKind": "DELTA",
                "valueType": "INT64",
                "points": [
                    _point("2024-05-01T10:00:00Z", {"int64Value": "42"}),
                    _point("2024-05-01T10:01:00Z", {"int64Value": "4.5"}),
                    _point("2024-05-01T10:02:00Z", {"doubleValue": "NaN"}),
                ],
            },
            {
                "metric": {"type": "m"},
                "resource": {"type": "r"},
                "metricKind": "DELTA",
                "valueType": "DISTRIBUTION",
                "points": [
                    _point(
                        "2024-05-01T10:00:00Z",
                        {
                            "distributionValue": {
                                "count": "2",
                                "mean": 1.5,
                                "bucketOptions": {"explicitBuckets": {"bounds": [1, 2]}},
                                "bucketCounts": ["0", "2"],
                            }
                        },
                    )
                ],
            },
            {"metric": {"labels": {}}},  # no type
            "not an object",
            {"metric": {"type": "m", "labels": ["x"]}},
        ],
        "nextPageToken": "next",
    }
    series, token, problems = parse_page(body)
    assert token == "next"
    assert len(series) == 2
    assert series[0].label("response_code") == "429" and series[0].label("location") == "us-central1"
    assert [p.value for p in series[0].points] == [42]
    assert series[0].points[0].end == parse_rfc3339("2024-05-01T10:00:00Z")
    assert isinstance(series[1].points[0].value, Distribution)
    assert len(problems) == 5  # two bad points, three bad series


def test_parse_page_rejects_unusable_pages():
    for body in ([], {"timeSeries": {}}, {"nextPageToken": 3}):
        with pytest.raises(MalformedPage):
            parse_page(body)
    assert parse_page({}) == ([], "", [])  # an empty answer is Google's "no data"


def test_typed_values():
    assert parse_value({"int64Value": "9007199254740993"}, "INT64") == 9007199254740993
    assert parse_value({"boolValue": True}, "BOOL") is True
    for bad in (
        {"int64Value": True},
        {"doubleValue": "Infinity"},
        {"int64Value": "1", "doubleValue": 1.0},
        {"stringValue": "x"},
        {"boolValue": "true"},
    ):
        with pytest.raises(ValueError):
            parse_value(bad, "")


def test_merge_pages_joins_a_series_split_across_pages():
    def page(end, value):
        return parse_page(
            {
                "timeSeries": [
                    {
                        "metric": {"type": "m", "labels": {"a": "1"}},
                        "resource": {"type": "r"},
                        "points": [_point(end, {"int64Value": value})],
                    }
                ]
            }
        )[0]

    merged = merge_pages([page("2024-05-01T10:01:00Z", "1"), page("2024-05-01T10:00:00Z", "2")])
    assert len(merged) == 1
    assert sorted(p.value for p in merged[0].points) == [1, 2]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "timeSeries",
                    "nextPageToken",
                    "metric",
                    "resource",
                    "type",
                    "labels",
                    "points",
                    "interval",
                    "endTime",
                    "startTime",
                    "value",
                    "int64Value",
                    "doubleValue",
                    "distributionValue",
                    "boolValue",
                    "valueType",
                    "executionErrors",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300)
@given(json_values)
def test_any_page_shape_parses_or_is_rejected_never_crashes(body):
    try:
        series, token, _problems = parse_page(body)
    except MalformedPage:
        return
    assert isinstance(token, str)
    for s in series:
        assert isinstance(s.metric_type, str)
        for p in s.points:
            assert isinstance(p.value, (int, float, bool, Distribution))
