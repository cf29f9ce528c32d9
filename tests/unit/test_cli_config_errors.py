"""`pettwin-checks run`: a configuration error is one line naming the file, the instance and the field."""

from __future__ import annotations

import pytest

from pettwin_checks.cli import main

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "text, says",
    [
        ("instances:\n  -\n", "instance 1 is empty (a bare `-`): give it its options, or `- {}` for every default"),
        ("instances:\n  - foo\n", "instance 1 is not a mapping of options: 'foo'"),
        ("init_config:\ninstances: []\n", "no `instances` configured"),
        (
            (
                "instances:\n  - kafka_connect_str: k:9092\n    monitor_unlisted_consumer_groups: true\n"
                "  - kafka_connect_str: k:9092\n    security_protocol: SASL_SSL\n    monitor_unlisted_consumer_groups: true\n"
            ),
            "instance 2: sasl_plain_username is required when security_protocol is SASL_SSL",
        ),
        (
            "instances:\n  - kafka_connect_str: k:9092\n    collection_timeout: -1\n    granularity: nope\n",
            (
                "instance 1: collection_timeout: Input should be greater than or equal to 1; "
                "granularity: Input should be 'partition', 'topic' or 'group'"
            ),
        ),
        ("instances: [\n", "while parsing a flow node"),
    ],
)
def test_config_errors_are_one_line_naming_file_and_field(tmp_path, capsys, text, says):
    conf = tmp_path / "conf.yaml"
    conf.write_text(text)
    assert main(["run", "pettwin_kafka_lag", "-c", str(conf)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"pettwin-checks: {conf}: ")
    assert says in line
    assert "Traceback" not in captured.err
