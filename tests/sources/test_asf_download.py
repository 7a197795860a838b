"""Our downloader against the loopback ASF: resume, MD5, auth, 202, cache, credentials."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os

import pytest
import shapely

from m3leo_tiles.errors import AuthError, TransientError
from m3leo_tiles.s1.download import (
    Credentials,
    DownloadCache,
    DownloadRetry,
    download,
    download_session,
    earthdata_credentials,
    fetch_all,
)
from m3leo_tiles.s1.products import S1Product
from tests.sources.asf_server import FakeAsf

TOKEN = "edl-token-never-logged"


class Sleeps(list):
    def __call__(self, s: float) -> None:
        self.append(s)


def _policy(**kw) -> DownloadRetry:
    return DownloadRetry(sleep=Sleeps(), **kw)


@pytest.fixture
def asf():
    with FakeAsf() as f:
        f.token = TOKEN
        yield f


def _data(n: int = 300_000, seed: int = 1) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (n // 32)


def _session():
    return download_session(Credentials(token=TOKEN))


def _gets(asf):
    return [h for m, _, h in asf.requests if m == "GET"]


def test_plain_download_verified(asf, tmp_path):
    md5 = asf.add_file("a.zip", data := _data())
    p = download(f"{asf.base}/data/a.zip", tmp_path / "a.zip", _session(), len(data), md5,
                 _policy())
    assert p.read_bytes() == data and not (tmp_path / "a.zip.part").exists()
    n = len(asf.requests)
    download(f"{asf.base}/data/a.zip", tmp_path / "a.zip", _session(), len(data), md5)
    assert len(asf.requests) == n  # verified file in place: nothing fetched again


def test_resume_after_cut_connection(asf, tmp_path, caplog):
    md5 = asf.add_file("a.zip", data := _data())
    asf.cut = 1
    pol = _policy()
    p = download(f"{asf.base}/data/a.zip", tmp_path / "a.zip", _session(), len(data), md5, pol)
    assert p.read_bytes() == data
    gets = _gets(asf)
    assert len(gets) == 2 and "Range" not in gets[0]
    start = int(gets[1]["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < start < len(data)  # resumed where the cut left it, not from zero
    assert len(pol.sleep) == 1 and 0 <= pol.sleep[0] <= pol.base  # jittered backoff
    assert "interrupted" in caplog.text


def test_checksum_mismatch_rejected_and_retried(asf, tmp_path):
    md5 = asf.add_file("a.zip", data := _data())
    asf.corrupt = 1
    p = download(f"{asf.base}/data/a.zip", tmp_path / "a.zip", _session(), len(data), md5,
                 _policy())
    assert p.read_bytes() == data and len(_gets(asf)) == 2
    assert all("Range" not in g for g in _gets(asf))  # a bad file is fetched again whole


def test_persistent_corruption_gives_up_cleanly(asf, tmp_path):
    md5 = asf.add_file("a.zip", data := _data())
    asf.corrupt = 100
    pol = _policy(attempts=3)
    with pytest.raises(TransientError, match="MD5 mismatch"):
        download(f"{asf.base}/data/a.zip", tmp_path / "a.zip", _session(), len(data), md5, pol)
    assert not (tmp_path / "a.zip").exists() and not (tmp_path / "a.zip.part").exists()
    assert len(_gets(asf)) == 3
    # bounded: a pause between attempts, each within its exponential cap
    assert len(pol.sleep) == 2 and all(0 <= s <= pol.base * 2 ** i for i, s in enumerate(pol.sleep))


def test_401_is_a_clear_auth_error(asf, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    asf.add_file("a.zip", _data())
    with pytest.raises(AuthError, match="Earthdata Login refused") as e:
        download(f"{asf.base}/data/a.zip", tmp_path / "a.zip",
                 download_session(Credentials(token="wrong-secret")), None, None, _policy())
    assert "wrong-secret" not in str(e.value) and "wrong-secret" not in caplog.text
    assert len(_gets(asf)) == 1  # not retried


def test_basic_credentials(asf, tmp_path):
    asf.token, asf.basic = None, ("alice", "s3cret")
    md5 = asf.add_file("a.zip", data := _data(1000))
    sess = download_session(earthdata_credentials(
        {"EARTHDATA_USERNAME": "alice", "EARTHDATA_PASSWORD": "s3cret"}))
    assert download(f"{asf.base}/data/a.zip", tmp_path / "a.zip", sess, len(data), md5,
                    _policy()).read_bytes() == data
    assert "s3cret" not in repr(sess) and "s3cret" not in repr(sess._creds)


def test_202_waited_on(asf, tmp_path):
    md5 = asf.add_file("burst.zip", data := _data(5000))
    asf.processing = 2
    pol = _policy(poll_202=0.01)
    p = download(f"{asf.base}/data/burst.zip", tmp_path / "b.zip", _session(), len(data), md5, pol)
    assert p.read_bytes() == data and len(_gets(asf)) == 3
    asf.processing = 1000
    with pytest.raises(TransientError, match="still processing"):
        download(f"{asf.base}/data/burst.zip", tmp_path / "c.zip", _session(), len(data), md5,
                 _policy(poll_202=1.0, wait_202=5.0))


def test_credentials_sources(tmp_path):
    assert earthdata_credentials({"EARTHDATA_TOKEN": "t"}).token == "t"
    c = earthdata_credentials({"EARTHDATA_USERNAME": "u", "EARTHDATA_PASSWORD": "p"})
    assert (c.username, c.password) == ("u", "p") and "p" not in repr(c).replace("caller", "")
    rc = tmp_path / "netrc"
    rc.write_text("machine urs.earthdata.nasa.gov login bob password hunter2\n")
    os.chmod(rc, 0o600)
    c = earthdata_credentials({"NETRC": str(rc)})
    assert (c.username, c.password) == ("bob", "hunter2") and "hunter2" not in repr(c)
    assert earthdata_credentials({"NETRC": str(tmp_path / "none")}) is None


def test_missing_credentials_fail_before_any_download(tmp_path, monkeypatch):
    for k in ("EARTHDATA_TOKEN", "EARTHDATA_USERNAME", "EARTHDATA_PASSWORD", "NETRC"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(AuthError, match="EARTHDATA_TOKEN.*netrc"):
        download_session()


def _product(asf, name: str, data: bytes) -> S1Product:
    md5 = asf.add_file(f"{name}.zip", data)
    t = dt.datetime(2025, 4, 6)
    return S1Product(name, "S1A", t, t, 108, 1, "ASCENDING", ("VV",), shapely.Point(0, 0),
                     url=f"{asf.base}/data/{name}.zip", size=len(data), md5=md5)


def test_cache_lru_eviction_and_concurrency(asf, tmp_path):
    prods = [_product(asf, f"P{i}", _data(100_000, i)) for i in range(4)]
    cache = DownloadCache(tmp_path / "cache", max_bytes=250_000)
    paths = fetch_all(prods[:2], cache, _session(), max_workers=2)
    assert [p.name for p in paths] == ["P0.zip", "P1.zip"]
    os.utime(paths[0], (1, 1))  # P0 least recently used
    cache.fetch(prods[2], _session())
    assert sorted(p.name for p in cache.entries()) == ["P1.zip", "P2.zip"]
    cache.fetch(prods[1], _session())  # hit: refreshes P1, nothing downloaded
    assert _gets(asf)[-1] is not None and len(_gets(asf)) == 3
    cache.fetch(prods[3], _session())
    assert sorted(p.name for p in cache.entries()) == ["P1.zip", "P3.zip"]


def test_asf_source_downloads_unit_products_into_cache(asf, tmp_path, monkeypatch):
    from m3leo_tiles.sources.asf import AsfSource
    from m3leo_tiles.sources.s1blocks import ProductRecord

    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    a, b = _product(asf, "REF", _data(2000, 7)), _product(asf, "SEC", _data(3000, 8))
    src = AsfSource(cache=str(tmp_path / "cache"))
    records = [ProductRecord.of(a), ProductRecord.of(b)]
    got = src.fetch_unit(records)
    assert (got.failed, got.unused) == ({}, set())
    ref, sec = got.paths
    assert open(ref, "rb").read() == _data(2000, 7) and sec.endswith("SEC.zip")
    monkeypatch.setenv("EARTHDATA_TOKEN", "bad")
    (tmp_path / "cache" / "SEC.zip").unlink()
    with pytest.raises(AuthError):
        src.fetch_unit(records)


def test_redirect_to_signed_url_drops_credentials_and_resumes(asf, tmp_path):
    """ASF answers 307 to a signed bucket URL: no Authorization may follow it there."""
    md5 = asf.add_file("a.zip", data := _data())
    asf.redirect, asf.cut = True, 1
    p = download(f"{asf.base}/data/a.zip", tmp_path / "a.zip", _session(), len(data), md5,
                 _policy())
    assert p.read_bytes() == data
    s3 = [(path, h) for m, path, h in asf.requests if path.startswith("/s3/")]
    assert len(s3) == 2 and all("Authorization" not in h for _, h in s3)
    assert "Range" in s3[1][1]  # the resume survives the redirect
    data_gets = [h for m, path, h in asf.requests if path.startswith("/data/")]
    assert all(h.get("Authorization") == f"Bearer {TOKEN}" for h in data_gets)


def test_search_download_and_hand_over_to_processor(asf, tmp_path, monkeypatch):
    """The whole chain on the real track-108 pair: search, plan, download, processor.

    Its measurement TIFFs are empty in the fixture, so the processor must answer every tile
    with a clear per-tile failure after the verified download: nothing crashes.
    """
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from m3leo_tiles.grid.build import build_grid
    from m3leo_tiles.grid.tileref import grid_table_to_refs
    from m3leo_tiles.modalities import get_modality
    from m3leo_tiles.periods import Period
    from m3leo_tiles.s1.archive import scan_archive
    from m3leo_tiles.sources.asf import AsfSource
    from tests.sources.asf_server import umm_item
    from tests.sources.test_asf_archive import SLC, _zip_safe

    if not SLC.is_dir():
        pytest.skip("shared s1data not present")
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    monkeypatch.setenv("M3LEO_S1_ORBITS_URL", f"{asf.base}/no-orbit-service")  # answers 404
    zdir = tmp_path / "zips"
    zdir.mkdir()
    for p in scan_archive(SLC):
        z = _zip_safe(SLC / f"{p.name}.SAFE", zdir)
        md5 = asf.add_file(z.name, z.read_bytes())
        asf.items.append(umm_item(p, asf.base, size=z.stat().st_size, md5=md5))
    dem = tmp_path / "flat.tif"
    with rasterio.open(dem, "w", driver="GTiff", width=200, height=100, count=1, dtype="float32",
                       crs="EPSG:4326", transform=from_origin(-129.0, 52.5, 0.01, 0.01)) as d:
        d.write(np.full((1, 100, 200), 100, np.float32))
    tiles = grid_table_to_refs(build_grid(shapely.box(-128.2, 52.0, -128.15, 52.03)))
    src = AsfSource(cache=str(tmp_path / "cache"), host=asf.host, dem=str(dem),
                    orbits=str(tmp_path / "orbits"), burst=False)
    mod = get_modality("s1coh")
    (per,) = src.periods(mod, [Period(dt.date(2025, 4, 1), dt.date(2025, 5, 1), "2025-04",
                                      "monthly")], tiles)
    (unit,) = src.plan(mod, per, tiles)
    with pytest.warns(UserWarning, match="annotation orbit"):
        results = list(src.read(unit, {t.id: t for t in tiles}, mod, per))
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.zip")) == \
        sorted(z.name for z in zdir.iterdir())
    assert [r.tile for r in results] == list(unit.tiles)
    assert all(r.status == "failed" and "measurement" in r.error for r in results), \
        [(r.status, r.error) for r in results]


def test_earthdata_login_redirect_flow(asf, tmp_path):
    """Data -> EDL authorize (basic auth there only) -> ASF login sets a cookie -> data."""
    asf.token, asf.edl = None, ("alice", "s3cret")
    md5 = asf.add_file("a.zip", data := _data(5000))
    sess = download_session(Credentials("alice", "s3cret"), auth_hosts=("localhost",))
    p = download(f"{asf.base}/data/a.zip", tmp_path / "a.zip", sess, len(data), md5, _policy())
    assert p.read_bytes() == data
    paths = [path.split("?")[0] for m, path, _ in asf.requests]
    assert paths == ["/data/a.zip", "/oauth/authorize", "/login", "/data/a.zip"]
    edl = [h for m, path, h in asf.requests if path.startswith("/oauth")]
    assert edl[0]["Authorization"].startswith("Basic ")
    assert "asf-urs=ok" in asf.requests[-1][2].get("Cookie", "")
    wrong = download_session(Credentials("alice", "nope"), auth_hosts=("localhost",))
    with pytest.raises(AuthError):
        download(f"{asf.base}/data/a.zip", tmp_path / "b.zip", wrong, len(data), md5, _policy())
