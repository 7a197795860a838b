"""`m3leo-tiles s1 assemble`: ASF burst downloads on disk recognised by name and metadata,
grouped into runs of consecutive bursts, one SAFE each (real annotation, track 108)."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest
import rasterio

from m3leo_tiles.s1.archive import read_product
from m3leo_tiles.s1.burstfiles import find_burst_files, runs
from tests.s1 import burstcut
from tests.sources.test_asf_archive import REF, SLC, _main

pytestmark = pytest.mark.skipif(not SLC.is_dir(), reason="shared s1data not present")
SAFE = SLC / f"{REF}.SAFE"


def _tiff(path, seed: int) -> None:
    """A small complex int16 TIFF standing in for a burst's pixels (the fixture has none)."""
    data = np.full((1508, 6), complex(seed, -seed), np.complex64)
    with rasterio.open(path, "w", driver="GTiff", width=6, height=1508, count=1,
                       dtype="complex_int16") as w:
        w.write(data, 1)


def _downloads(folder, swath: str, indices, pols=("VV", "VH")) -> dict[int, str]:
    """ASF's file names: <burst granule>.tiff and <SLC>_<POL>.xml; {index: burst id}."""
    folder.mkdir(exist_ok=True)
    text = next((SAFE / "annotation").glob(f"*-{swath.lower()}-slc-vv-*.xml")).read_text()
    bursts = re.findall(r"<burst>\s*<azimuthTime>([^<]+)</azimuthTime>.*?"
                        r"<burstId[^>]*>(\d+)</burstId>", text, re.S)
    ids = {}
    for pol in pols:
        (folder / f"{REF}_{pol}.xml").write_bytes(burstcut.metadata_xml(SAFE, pol))
        for i in indices:
            t = dt.datetime.fromisoformat(bursts[i][0])
            name = f"S1_{int(bursts[i][1]):06d}_{swath}_{t:%Y%m%dT%H%M%S}_{pol}_{REF[-4:]}-BURST"
            _tiff(folder / f"{name}.tiff", i)
            ids[i] = f"108_{bursts[i][1]}_{swath}"
    return ids


def test_recognise_and_group(tmp_path, capsys):
    ids = _downloads(tmp_path / "dl", "IW2", [1, 2, 5])
    files = find_burst_files(tmp_path / "dl")
    assert sorted((f.swath, f.polarisation, f.index) for f in files) == sorted(
        ("IW2", p, i) for p in ("VV", "VH") for i in (1, 2, 5))
    assert {f.slc for f in files} == {REF}
    assert [sorted({f.index for f in r}) for r in runs(files)] == [[1, 2], [5]]
    code, text = _main(["s1", "assemble", str(tmp_path / "dl"), "--out", str(tmp_path / "safe")],
                       capsys)
    assert code == 0, text
    safes = sorted(tmp_path.joinpath("safe").glob("*.SAFE"))
    assert len(safes) == 2 and {str(s) for s in safes} <= set(text.split())
    got = sorted(read_product(s).burst_ids for s in safes)
    assert got == sorted([tuple(sorted((ids[1], ids[2]))), (ids[5],)])
    run = next(s for s in safes if len(read_product(s).burst_ids) == 2)
    (meas,) = (run / "measurement").glob("*-vh-*.tiff")
    with rasterio.open(meas) as r:  # bursts 1 and 2 stacked in order
        px = r.read(1)
    assert px.shape == (2 * 1508, 6) and px[0, 0] == 1 - 1j and px[-1, -1] == 2 - 2j


def test_cli_bad_folders(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, text = _main(["s1", "assemble", str(tmp_path / "empty"), "-o", str(tmp_path / "o")],
                       capsys)
    assert code == 2 and "no ASF burst TIFF" in text and len(text.strip().splitlines()) == 1
    _downloads(tmp_path / "dl", "IW3", [0], pols=("VV",))
    (tmp_path / "dl" / f"{REF}_VV.xml").unlink()
    code, text = _main(["s1", "assemble", str(tmp_path / "dl"), "-o", str(tmp_path / "o")],
                       capsys)
    assert code == 2 and "metadata XML" in text and len(text.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    _downloads(tmp_path / "torn", "IW1", [3, 4], pols=("VV",))
    next((tmp_path / "torn").glob("S1_*IW1*.tiff")).write_bytes(b"II*\x00 cut short")
    code, text = _main(["s1", "assemble", str(tmp_path / "torn"), "-o", str(tmp_path / "o")],
                       capsys)
    assert code == 2 and "unreadable burst TIFF" in text and len(text.strip().splitlines()) == 1
    assert not list((tmp_path / "o").glob("*.SAFE"))  # nothing half-done
