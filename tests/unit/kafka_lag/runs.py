"""A check run's evaluation without its I/O, as the check sequences it."""

from pettwin_checks.kafka_lag.evaluate import judge, lag_rows, observe_high_watermarks


def evaluate(snapshot, state, now, window_seconds, record_times=None):
    """The lag rows, the high watermarks observed, then the rows judged; (rows, lags clamped)."""
    rows, clamped = lag_rows(snapshot)
    observe_high_watermarks(snapshot, state, now)
    judge(rows, snapshot, state, now, window_seconds, {} if record_times is None else record_times)
    return rows, clamped
