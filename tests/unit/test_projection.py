import random

from redpajama.pipelines.commands import projection


def test_the_minimum_is_where_a_bootstrap_interval_stops_being_over_ten_percent_too_narrow():
    assert projection.narrowness(projection.MIN_UNITS - 1) < 0.9 <= projection.narrowness(projection.MIN_UNITS)
    assert projection.narrowness(2) < 0.2  # two units: the interval Wikipedia once got from two languages


def test_too_few_units_give_no_interval_and_say_why():
    few = projection.bootstrap([100] * 5 + [400] * 5, processed=projection.MIN_UNITS - 1, full=1000, scale=1.0,
                               unit="train files")
    assert few.bounds is None
    assert few.why.startswith(f"no interval: only {projection.MIN_UNITS - 1} processed (train files); a bootstrap "
                              f"needs at least {projection.MIN_UNITS}")
    assert few.why.endswith(f"with {projection.MIN_UNITS - 1} its 95 % interval would come out 10.3% too narrow")
    one = projection.bootstrap([100], processed=1, full=1024, scale=1.0, unit="train files")
    assert one.bounds is None and "one unit shows no spread at all" in one.why
    whole = projection.bootstrap([1] * 20, processed=20, full=20, scale=1.0, unit="language dumps")
    assert whole.bounds is None and whole.why == "all 20 language dumps processed: a count, not a projection"


def test_enough_units_give_a_deterministic_interval_around_the_projection():
    rng = random.Random(1)
    yields = [rng.lognormvariate(10, 1) for _ in range(40)]
    spread = projection.bootstrap(yields, processed=50, full=5000, scale=0.25, unit="WET files")
    assert spread == projection.bootstrap(yields, processed=50, full=5000, scale=0.25, unit="WET files")
    point = sum(yields) / 50 * 5000 * 0.25
    assert spread.low < point < spread.high
    assert "95 % bootstrap interval (BCa, 2,000 resamples) over the 50 WET files processed" in spread.why
    assert projection.interval([round(y) for y in yields], 50, 5000, round(sum(yields) * 0.25)) is not None
    assert projection.interval([10] * 5, 5, 5000, 50) is None  # too few


def test_a_large_share_of_the_units_narrows_the_interval():
    yields = [100, 400, 250, 900, 50, 700, 300, 120, 80, 600] * 3
    wide = projection.bootstrap(yields, processed=30, full=1_000_000, scale=1.0, unit="units")
    narrow = projection.bootstrap(yields, processed=30, full=40, scale=1.0, unit="units")
    relative = [(s.high - s.low) / (sum(yields) / 30 * full) for s, full in ((wide, 1_000_000), (narrow, 40))]
    assert relative[1] < relative[0] / 1.5
    assert "finite population correction 0.51" in narrow.why and "finite population" not in wide.why


def test_equal_units_leave_no_spread():
    spread = projection.bootstrap([10] * 20, processed=20, full=100, scale=2.0, unit="units")
    assert spread.bounds == (2000, 2000)


def test_arxiv_months_run_from_1991():
    assert projection._months("9108") < projection._months("0001") < projection._months("2303")
