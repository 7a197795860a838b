"""The estimator's running meter: bytes of finished units and an ETA from measured rates."""

from __future__ import annotations

from m3leo_tiles.runner.estimate import CostModel, Rate, RunMeter
from m3leo_tiles.runner.inputs import UnitInputs
from m3leo_tiles.runner.state import Outcome
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
