"""Simulator stacks (issue 13): 6/12-day spacing, both passes, the temporal decay model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray_sentinel

from m3leo_tiles.errors import BadInput
from m3leo_tiles.simulator import simulate
from m3leo_tiles.simulator.scene import (
    CLASSES,
    decay_coherence,
    decay_params,
    decay_speckle,
)
from m3leo_tiles.simulator.templates import ORBIT_OFFSET, TRACKS


@pytest.mark.parametrize("passage", ["asc", "des"])
def test_stack_names_keep_the_track_and_alternate_platforms(passage):
    tr = TRACKS[passage]
    assert tr.read(f"annotation-{tr.swath}-vv.xml").count(tr.passage.title()) >= 1
    seen = set()
    for spacing in (6, 12):
        for k in range(10):
            name, subs, day = tr.product(k, spacing)
            plat, orbit = name[2], int(name[49:55])
            assert (day - tr.date).days == spacing * k and name[17:25] == f"{day:%Y%m%d}"
            assert (orbit - ORBIT_OFFSET[plat]) % 175 + 1 == tr.relative_orbit, name
            assert plat == (tr.platform if spacing * k % 12 == 0 else
                            {"A": "B", "B": "A"}[tr.platform])
            assert k or name == tr.name
            seen.add(name)
    assert len(seen) == 15  # 6-day even dates are the 12-day dates


def test_decay_model_keeps_the_12_day_coherence_and_holds_in_expectation():
    for model in ("ar1", "rho"):
        for k, (rho, tau) in decay_params(model).items():
            assert decay_coherence(rho, tau, 12) == pytest.approx(CLASSES[k][4], abs=1e-12)
            assert decay_coherence(rho, tau, 0) == 1.0
            if model == "ar1":
                assert rho == 0.0
    # the simulator's speckle construction: sample correlation vs (1 - rho) exp(-t / tau) + rho
    rng = np.random.default_rng(5)
    rho = np.full(200_000, 0.3)
    tau = np.full(200_000, 14.0)
    days = [0, 6, 12, 24, 48]
    s = decay_speckle(rng, days, rho, tau).astype(np.complex128)
    assert np.allclose(np.mean(np.abs(s) ** 2, axis=1), 1.0, atol=0.01)
    for j in range(1, len(days)):
        got = abs(np.mean(s[0] * np.conj(s[j])))
        assert got == pytest.approx(decay_coherence(0.3, 14.0, days[j]), abs=0.01)


def test_bad_stack_arguments(tmp_path):
    for kw, msg in (({"n_dates": 17}, "between 2 and 16"), ({"spacing": 7}, "6 or 12"),
                    ({"passage": "up"}, "asc or des"), ({"decay": "linear"}, "ar1 or rho"),
                    ({"radiometry": "rtc"}, "flat or terrain"), ({"relief": 900}, "0 and 500")):
        with pytest.raises(BadInput, match=msg):
            simulate(tmp_path / "x", **kw)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_descending_six_day_stack(tmp_path):
    """3 dates of the descending geometry, S1B/S1A alternating: real SAFE that geolocates."""
    from m3leo_tiles.sar.geocode import gcp_residuals
    from m3leo_tiles.sar.safe import open_swath

    out = simulate(tmp_path / "des", n_dates=3, spacing=6, passage="des", decay="rho")
    m = json.loads((tmp_path / "des" / "simulation.json").read_text())
    assert m["pass"] == "DESCENDING" and m["relative_orbit"] == 168 and m["spacing_days"] == 6
    assert m["dates"] == ["2021-04-01", "2021-04-07", "2021-04-13"]
    assert [p.split("/")[-1][:3] for p in m["products"]] == ["S1B", "S1A", "S1B"]
    assert m["classes"]["5"]["rho"] == 0.7 and len(out.tiles) >= 2
    for p in m["products"]:
        ds = xarray_sentinel.open_sentinel1_dataset(tmp_path / "des" / p, group="IW1/VV")
        assert ds.attrs["relative_orbit_number"] == 168
        assert ds.attrs["pass"] == "DESCENDING"
        assert gcp_residuals(open_swath(tmp_path / "des" / p, "IW1", "VV"))["rms_px"] < 0.1
    tr = np.load(tmp_path / "des" / m["truth"][0])
    assert set(np.unique(tr["rho"])) <= {0.0, np.float32(0.1), np.float32(0.15),
                                         np.float32(0.3), np.float32(0.7)}
    assert tr["deformation"].shape[0] == 3
