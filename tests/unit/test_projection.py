from redpajama.pipelines import projection


def test_interval_is_deterministic_and_brackets_the_projection():
    yields = [100, 400, 250, 900, 50]
    first = projection.interval(yields, processed=6, full=600, tokens=1700)
    assert first == projection.interval(yields, processed=6, full=600, tokens=1700)
    point = 1700 * 600 / 6
    assert first[0] < point < first[1]


def test_equal_units_leave_no_spread_and_one_unit_gives_no_interval():
    assert projection.interval([10, 10, 10], processed=3, full=30, tokens=60) == (600, 600)
    assert projection.interval([10], processed=1, full=30, tokens=20) is None
    assert projection.interval([10, 10], processed=1, full=30, tokens=20) is None  # inconsistent stats


def test_arxiv_months_run_from_1991():
    assert projection._months("9108") < projection._months("0001") < projection._months("2303")
