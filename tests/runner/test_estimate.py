"""The estimator: its cost model fitted on unit records, and the running meter (bytes of
finished units and an ETA from measured rates)."""

from __future__ import annotations

from m3leo_tiles.runner.estimate import CostModel, Rate, RunMeter, fit_rate
from m3leo_tiles.runner.inputs import UnitInputs
from m3leo_tiles.runner.state import Outcome, StateDB, UnitCost
from m3leo_tiles.sources.base import WorkUnit


def test_the_meter_counts_each_burst_once_and_the_eta_falls_with_the_work_left():
    units = [WorkUnit("s1grd", "P", ("a", "b"), key="u0"), WorkUnit("s1grd", "P", ("c",))]
    inputs = [UnitInputs("u0", {"f#1": 2_000_000_000, "f#2": 1_000_000_000},
                         tile_dates={"s1grd": 6}),
              UnitInputs("u1", {"f#2": 1_000_000_000}, tile_dates={"s1grd": 3})]
    meter = RunMeter(units, inputs, CostModel({"s1grd": Rate(600.0, None, "run")}), workers=2)
    # 9 reads x 600 s over 2 workers: 45 min; u0 done leaves 3 x 600 / 2 = 15 min
    first = meter.add([Outcome("s1grd", "P", "b", "done"), Outcome("s1grd", "P", "a", "done")])
    assert first == {"dl": "3.0 GB", "eta": "15min"}
    assert meter.add([Outcome("s1grd", "P", "c", "done")]) == {"dl": "3.0 GB", "eta": "0min"}


def unit_rows(dates: int, units: int, per_unit: float, per_read: float) -> list[UnitCost]:
    """Cost records of S1 block units of one tile: s1grd reads `dates`, s1coh a pair per
    consecutive dates (2 reads each); a unit's seconds split by reads, as the engine does."""
    reads = {"s1grd": dates, "s1coh": 2 * (dates - 1)}
    total = sum(reads.values())
    seconds = per_unit + per_read * total
    return [UnitCost(m, "archive", r, seconds * r / total, 1, r / total)
            for _ in range(units) for m, r in reads.items()]


def test_two_unit_sizes_separate_the_fixed_cost_per_unit_and_extrapolate(tmp_path):
    """Issue 20: calibrated at 2 and 3 dates, a 5-date run is priced right; one average per
    read (the round-1 model) would miss it by a third."""
    db = StateDB(str(tmp_path / "cal.sqlite"))
    db.record_costs(unit_rows(2, 4, per_unit=6.0, per_read=0.5) +
                    unit_rows(3, 4, per_unit=6.0, per_read=0.5))
    model = CostModel.load((db, "calibration"))
    rate = model.rate("s1grd")
    assert abs(rate.seconds_per_unit - 6.0) < 1e-6 and abs(rate.seconds_per_read - 0.5) < 1e-6
    truth = 6.0 + 0.5 * (5 + 8)  # one 5-date unit: 5 + 2 x 4 reads
    got = sum(model.rate(m).seconds(r / 13, r) for m, r in (("s1grd", 5), ("s1coh", 8)))
    assert abs(got - truth) / truth < 1e-6
    reads, seconds, _ = db.costs()["s1grd"]
    average = seconds / reads * 5 + db.costs()["s1coh"][1] / db.costs()["s1coh"][0] * 8
    assert abs(average - truth) / truth > 0.25  # what a single average per read gives


def test_one_unit_size_cannot_separate_them_one_average_per_read():
    rows = [(0.25, 3.0, 1.5), (0.25, 3.0, 1.5), (0.5, 6.0, 3.0)]  # share proportional to reads
    assert fit_rate(rows) == (0.0, 0.5)
    assert fit_rate([]) is None and fit_rate([(1.0, 0.0, 2.0)]) is None


def test_a_state_database_from_before_the_share_column_opens_and_records(tmp_path):
    path = tmp_path / "old.sqlite"
    db = StateDB(str(path))
    with db.conn:  # the round-1 costs table, one record in it
        db.conn.execute("DROP TABLE costs")
        db.conn.execute("CREATE TABLE costs (modality TEXT NOT NULL, source TEXT NOT NULL, "
                        "reads REAL NOT NULL, seconds REAL NOT NULL, chunks INTEGER NOT NULL, "
                        "updated REAL NOT NULL)")
        db.conn.execute("INSERT INTO costs VALUES ('s2', 'local', 4, 2, 4, 1)")
    db.close()
    old = StateDB(str(path), create=False)  # a reader: no migration, old records read share 1
    assert old.cost_rows("s2") == [(1.0, 4.0, 2.0)]
    old.close()
    db = StateDB(str(path))
    db.record_costs([UnitCost("s2", "local", 2, 1, 2, 0.5)])
    assert sorted(db.cost_rows("s2")) == [(0.5, 2.0, 1.0), (1.0, 4.0, 2.0)]


def test_a_worker_process_first_unit_its_warm_up_is_left_out_of_the_rates(tmp_path):
    """A process's first unit compiles kernels and touches files first: 4x a warm one here
    (measured on the calibration's S1 units); the rates come from the warm units."""
    db = StateDB(str(tmp_path / "c.sqlite"))
    db.record_costs([UnitCost("s1grd", "archive", 3, 1.0, 1, 0.25, cold=True)] +
                    [UnitCost("s1grd", "archive", 3, 0.15, 1, 0.25)] * 3)
    assert abs(CostModel.load((db, "run")).rate("s1grd").seconds_per_read - 0.05) < 1e-12
    only = StateDB(str(tmp_path / "d.sqlite"))  # nothing but first units: those, then
    only.record_costs([UnitCost("s2", "local", 2, 1.0, 2, 1.0, cold=True)])
    assert abs(CostModel.load((only, "run")).rate("s2").seconds_per_read - 0.5) < 1e-12
