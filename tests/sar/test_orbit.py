"""Orbit interpolation against real ESA state vectors (RESORB, POEORB, annotation)."""

from __future__ import annotations

import numpy as np
import pytest

from m3leo_tiles.sar.orbit import Orbit, find_eof, read_eof

EOFS = [
    "RAiDER/test/orbit_files/S1_orbit_example.EOF",
    "s1-reader/tests/data/orbits/"
    "S1A_OPER_AUX_RESORB_OPOD_20230823T162050_V20230823T123139_20230823T154909.EOF",
]


def _times(o: Orbit) -> np.ndarray:
    return o.t_ref + (o.t * 1e9).round().astype("timedelta64[ns]")


@pytest.mark.parametrize("rel", EOFS)
def test_reproduces_vectors_and_leave_one_out(s1data, rel):
    o = read_eof(s1data / rel)
    p, v, _ = o.interpolate(o.t)
    assert np.abs(p - o.pos).max() < 1e-6 and np.abs(v - o.vel).max() < 1e-6
    # leave one vector out (a 20 s gap): predict it to the millimetre
    times = _times(o)
    idx = range(3, len(o.t) - 3) if len(o.t) < 50 else range(300, 320)
    for i in idx:
        keep = np.ones(len(o.t), bool)
        keep[i] = False
        o2 = Orbit.from_vectors(times[keep], o.pos[keep], o.vel[keep])
        pp, vv = o2.at(times[i:i + 1])
        assert np.linalg.norm(pp[0] - o.pos[i]) < 1e-3
        assert np.linalg.norm(vv[0] - o.vel[i]) < 1e-3


def test_velocity_is_derivative_of_position(s1data):
    o = read_eof(s1data / EOFS[1])
    t = o.t[500] + np.array([3.3, 3.3 + 1e-3])
    p, v, _ = o.interpolate(t)
    assert np.linalg.norm((p[1] - p[0]) / 1e-3 - v[0]) < 0.05  # m/s, finite-difference check


def test_two_resorb_files_agree_in_overlap(s1data):
    d = s1data / "s1-reader/tests/data/orbits"
    a, b = (read_eof(f) for f in sorted(d.glob("*.EOF")))
    t = np.datetime64("2023-08-23T15:00:00", "ns")
    pa, _ = a.at(np.array([t]))
    pb, _ = b.at(np.array([t]))
    assert np.linalg.norm(pa - pb) < 0.5  # two restituted solutions: decimetres at most
    f = find_eof(d, "S1A", t, t + np.timedelta64(60, "s"))
    assert f is not None and "RESORB" in f.name


def _write_eof(directory, orb, shift_m: float = 0.0):
    times = orb.azimuth_time.values
    osv = []
    for k, t in enumerate(times):
        p = [float(x) for x in orb.position.values[:, k]]
        p[0] += shift_m
        v = [float(x) for x in orb.velocity.values[:, k]]
        utc = np.datetime_as_string(t, unit="us")
        osv.append(f"<OSV><UTC>UTC={utc}</UTC><X unit=\"m\">{p[0]!r}</X><Y unit=\"m\">{p[1]!r}</Y>"
                   f"<Z unit=\"m\">{p[2]!r}</Z><VX unit=\"m/s\">{v[0]!r}</VX>"
                   f"<VY unit=\"m/s\">{v[1]!r}</VY><VZ unit=\"m/s\">{v[2]!r}</VZ></OSV>")

    def stamp(t):
        return np.datetime_as_string(t, unit="s").replace("-", "").replace(":", "")

    start, stop = stamp(times[0] - np.timedelta64(1, "s")), stamp(times[-1] + np.timedelta64(1, "s"))
    name = f"S1A_OPER_AUX_POEORB_OPOD_20250426T000000_V{start}_{stop}.EOF"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(
        "<Earth_Explorer_File><Earth_Explorer_Header><Variable_Header><Ref_Frame>EARTH_FIXED"
        "</Ref_Frame></Variable_Header></Earth_Explorer_Header><Data_Block><List_of_OSVs>"
        + "".join(osv) + "</List_of_OSVs></Data_Block></Earth_Explorer_File>")


def test_eof_orbit_dir_is_used_by_open_swath(s1data, tmp_path):
    """An EOF in orbit_dir replaces the annotation orbit (a 100 m shifted copy moves the
    geolocation by tens of samples; the unshifted copy reproduces the annotation's)."""
    import xarray as xr

    from m3leo_tiles.sar.geocode import gcp_residuals
    from m3leo_tiles.sar.safe import open_swath

    safe = s1data / ("hyp3-isce2/tests/data/packaging/slc/"
                     "S1A_IW_SLC__1SDV_20250406T022008_20250406T022035_058630_07421F_93A7.SAFE")
    orb = xr.open_dataset(safe, engine="sentinel-1", group="IW2/VV/orbit")
    _write_eof(tmp_path / "same", orb)
    _write_eof(tmp_path / "shifted", orb, shift_m=100.0)
    ann = gcp_residuals(open_swath(safe, "IW2", "VV"))
    same = gcp_residuals(open_swath(safe, "IW2", "VV", orbit_dir=tmp_path / "same"))
    moved = gcp_residuals(open_swath(safe, "IW2", "VV", orbit_dir=tmp_path / "shifted"))
    assert abs(same["rms_px"] - ann["rms_px"]) < 1e-4
    assert moved["rms_px"] > 5


def test_an_osv_without_a_component_names_it(tmp_path):
    from m3leo_tiles.errors import OrbitFileError

    osv = "".join(
        f"<OSV><UTC>UTC=2025-04-06T02:2{k}:00.000000</UTC><X>7e6</X><Y>0</Y><Z>0</Z>"
        f"<VX>0</VX><VY>7e3</VY>{'' if k == 2 else '<VZ>0</VZ>'}</OSV>" for k in range(5))
    f = tmp_path / "S1A_OPER_AUX_POEORB_OPOD_20250426T000000_V20250406T021900_20250406T022500.EOF"
    f.write_text("<Earth_Explorer_File><Data_Block><List_of_OSVs>" + osv
                 + "</List_of_OSVs></Data_Block></Earth_Explorer_File>")
    with pytest.raises(OrbitFileError) as e:
        read_eof(f)
    assert str(e.value) == f"{f.name}: unreadable orbit file: ValueError: an OSV record has no VZ"
