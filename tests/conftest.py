"""Shared fixtures: where ../shared is, and the slow-test switch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# worker processes (joblib, Dask, CLI subprocesses) import the test-only synthetic source
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
# no test reaches the real s1-orbits service: unless a test points it at a loopback server,
# orbit requests meet a closed local port (the annotation-orbit fallback, with its warning)
os.environ.setdefault("M3LEO_S1_ORBITS_URL", "http://127.0.0.1:9")
SHARED = Path(os.environ.get("M3LEO_SHARED", ROOT.parent / "shared"))
S1DATA = SHARED / "s1data"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("M3LEO_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: use --runslow or M3LEO_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def track108_aoi(tmp_path) -> Path:
    """A GeoJSON AOI inside the real track-108 SLCs of ../shared (hyp3-isce2's pair)."""
    p = tmp_path / "aoi.geojson"
    p.write_text('{"type":"Polygon","coordinates":[[[-128.2,52.0],[-127.9,52.0],[-127.9,52.2],'
                 '[-128.2,52.2],[-128.2,52.0]]]}')
    return p


@pytest.fixture(scope="session")
def s1data() -> Path:
    """../shared/s1data, or a clean skip where it is absent."""
    if not S1DATA.is_dir():
        pytest.skip("../shared/s1data is absent")
    return S1DATA


@pytest.fixture(scope="session")
def small_sim(tmp_path_factory) -> Path:
    """One seeded `simulate --size small` for the whole session (about half a minute).

    Under pytest-xdist the workers share one copy: the first to take the lock simulates into
    a temporary folder and renames it into place, the others wait and reuse it."""
    from filelock import FileLock

    from m3leo_tiles.simulator import simulate

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder every worker's basetemp lives in
    out = root / "shared-sim" / "small"
    out.parent.mkdir(exist_ok=True)
    with FileLock(str(out.parent / ".lock")):
        if not out.is_dir():
            part = out.parent / "small.part"
            simulate(part, size="small", seed=0)
            part.rename(out)
    return out
