"""The benchmark harness's own arithmetic: ratios, the client-saturation check, the knee, the tables.

No server runs here: these are the pure parts of bench/report.py and bench/load.py that turn
measures into the published figures, where a slip would silently publish a wrong ratio.
"""

from __future__ import annotations

import csv
import io

import pytest

from bench.load import Load
from bench.report import (
    CLIENT_BOUND,
    CSV_COLUMNS,
    ORTHANC,
    OURS,
    Figure,
    Sample,
    SweepPoint,
    client_bound,
    csv_text,
    knee,
    knees,
    markdown_table,
    number,
    oriented_ratio,
    percentile,
    summarize,
    sweep_csv_text,
    sweep_markdown,
)

RATE = Figure("ingest-rest-tiny-x4", "REST ingest, tiny, 4 client(s)", "instances/s", clients=4)
TIME = Figure("cfind-studies", "C-FIND of the study list", "ms", higher_is_better=False)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) is None


def test_ratio_is_above_one_when_ours_is_better_for_rates_and_for_times() -> None:
    assert oriented_ratio(RATE, 200.0, 100.0) == 2.0
    assert oriented_ratio(TIME, 50.0, 100.0) == 2.0  # ours takes half the time
    assert oriented_ratio(TIME, 200.0, 100.0) == 0.5
    assert oriented_ratio(RATE, 100.0, None) is None
    assert oriented_ratio(RATE, 100.0, 0.0) is None


def test_client_bound_when_one_more_client_raises_the_rate_beyond_the_tolerance() -> None:
    assert client_bound([1000.0], [1200.0])
    assert not client_bound([1000.0], [1050.0])  # within 10 %: the server is the limit
    assert not client_bound([1000.0], [900.0])
    assert client_bound([1000.0, 1000.0, 5000.0], [1150.0, 1150.0, 1150.0])  # medians, not means
    assert not client_bound([], [1200.0])


def test_knee_is_where_the_throughput_stops_growing() -> None:
    steps = [1, 2, 4, 8, 16]
    assert knee(steps, [100, 190, 350, 360, 300], [1, 1, 2, 3, 5]) == 4
    assert knee(steps, [100, 200, 400, 800, 1600], [1, 1, 1, 1, 1]) == 16  # never saturated
    assert knee([1], [100], [1]) == 1
    assert knee([], [], []) is None


def test_knee_is_where_the_p99_passes_ten_times_one_clients() -> None:
    assert knee([1, 2, 4, 8], [100, 200, 400, 800], [1.0, 2.0, 12.0, 20.0]) == 2
    assert knee([1, 2, 4], [100, 200, 400], [None, 50.0, 90.0]) == 4  # no single-client p99: growth alone


def test_summarize_gives_medians_spreads_ratio_resources_and_flags() -> None:
    samples = {
        (RATE.key, OURS): [
            Sample(90.0, 1.0, 100.0, 0.1),
            Sample(110.0, 3.0, 120.0, 0.3),
            Sample(100.0, 2.0, 90.0, 0.2),
        ],
        (RATE.key, ORTHANC): [Sample(50.0, 1.0, 80.0, 0.1)],
        (TIME.key, OURS): [Sample(30.0)],
    }
    rows = summarize([RATE, TIME], samples, {RATE.key: ([50.0], [70.0])})
    rate, time = rows
    assert rate.medians == {OURS: 100.0, ORTHANC: 50.0}
    assert rate.spreads[OURS] == (90.0, 110.0)
    assert rate.repeats == {OURS: 3, ORTHANC: 1}
    assert rate.ratio == 2.0
    assert rate.server_cpu[OURS] == 2.0
    assert rate.peak_rss_mb[OURS] == 120.0  # the highest of the repeats
    assert rate.client_cpu[ORTHANC] == 0.1
    assert rate.flags == [CLIENT_BOUND]
    assert time.medians[ORTHANC] is None and time.ratio is None and time.spreads[ORTHANC] is None
    assert time.flags == []


def test_summarize_skips_figures_never_measured() -> None:
    assert summarize([RATE], {}, {}) == []


def test_markdown_table_has_one_row_per_figure_with_every_column() -> None:
    samples = {(RATE.key, OURS): [Sample(123.4, 1.5, 200.0, 0.25)], (RATE.key, ORTHANC): [Sample(246.8, 1.0, 90.0)]}
    table = markdown_table(summarize([RATE], samples, {RATE.key: ([246.8], [400.0])}))
    header, separator, row = table.strip().splitlines()
    assert header.count("|") == separator.count("|") == row.count("|")
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:5] == ["REST ingest, tiny, 4 client(s)", "instances/s", "123", "247", "0.5"]
    assert cells[7] == "1/1"
    assert cells[8] == "1.50 / 1.00"
    assert cells[-1] == CLIENT_BOUND


def test_markdown_says_lower_is_better_for_times() -> None:
    table = markdown_table(summarize([TIME], {(TIME.key, OURS): [Sample(5.0)]}, {}))
    assert "ms (lower is better)" in table


def test_csv_round_trips_the_figures() -> None:
    samples = {(RATE.key, OURS): [Sample(100.0, 2.0)], (RATE.key, ORTHANC): [Sample(200.0, 1.0)]}
    rows = list(csv.DictReader(io.StringIO(csv_text(summarize([RATE], samples, {})))))
    assert len(rows) == 1
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0]["figure"] == RATE.key
    assert float(rows[0]["ours"]) == 100.0
    assert float(rows[0]["orthanc"]) == 200.0
    assert float(rows[0]["ratio"]) == 0.5
    assert rows[0]["ours_min"] == rows[0]["ours_max"] == "100"
    assert rows[0]["clients"] == "4"
    assert rows[0]["ours_peak_rss_mb"] == ""


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "-"), (0.0, "0"), (1234.5, "1234"), (12.34, "12.3"), (1.234, "1.23"), (0.01234, "0.0123")],
)
def test_numbers_keep_about_three_significant_digits(value: float | None, shown: str) -> None:
    assert number(value) == shown


def _curve(server: str, rates: list[float], errors: dict[str, int] | None = None) -> list[SweepPoint]:
    return [
        SweepPoint("HTTP", server, step, rate, 1.0, 2.0, (errors or {}) if step == 4 else {})
        for step, rate in zip([1, 2, 4], rates, strict=True)
    ]


def test_sweep_knees_and_tables_per_server() -> None:
    points = _curve(OURS, [100, 200, 205]) + _curve(ORTHANC, [100, 200, 400], {"503": 3})
    assert knees(points) == {("HTTP", OURS): 2, ("HTTP", ORTHANC): 4}
    text = sweep_markdown(points, {"HTTP": "requests/s"})
    assert "knee: ours 2, Orthanc 4" in text
    assert "| 4 | 205 | 1.00 / 2.00 |  | 400 | 1.00 / 2.00 | 503 3 |" in text
    lines = sweep_csv_text(points).splitlines()
    assert lines[0] == "sweep,server,concurrency,rate,p50_ms,p99_ms,errors,client_cpu_s"
    assert "HTTP,Orthanc,4,400,1,2,503=3," in lines


def test_load_rate_and_clean_check() -> None:
    load = Load(requests=300, seconds=1.5, latencies=[0.01] * 300, errors={}, client_cpu=0.2, processes=4)
    assert load.rate == 200.0
    assert load.percentile(0.99) == 0.01
    assert load.check() is load
    with pytest.raises(RuntimeError, match="503"):
        Load(0, 1.0, [], {"503": 2}, 0.0, 1).check()
    assert Load(0, 0.0, [], {}, None, 1).rate == 0.0
