"""Mutated JSON-ish inputs: STAC archives (local source), AOI files (grid), CMR search
answers (ASF, through the real asf_search client) and Earth Engine NPY answers. Only our
own errors escape, in one line; what is accepted is usable downstream."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter

import numpy as np
import pytest
import shapely
from hypothesis import strategies as st

from m3leo_tiles.errors import BadInput, M3leoError, PermanentError, TransientError
from m3leo_tiles.grid.regions import load_aoi
from m3leo_tiles.s1.archive import read_product
from m3leo_tiles.s1.search import search_products
from m3leo_tiles.sources.earthengine import decode_npy
from m3leo_tiles.sources.local import LocalRasterSource, load_index
from tests.conftest import S1DATA
from tests.fuzz import seeds
from tests.fuzz.mutate import Blob, byte_damage, mutated_json, mutated_json_bytes, run_fuzz
from tests.fuzz.test_safe import DEPTHS
from tests.loopback import LoopbackServer, QuietHandler

#: a parser that hangs fails its test instead of the whole run
pytestmark = pytest.mark.timeout(240)
REAL_ITEM = S1DATA / "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/" \
    "2020/2/S2A_29RKH_20200219_0_L2A/S2A_29RKH_20200219_0_L2A.json"
STAC_KEYS = ("type", "features", "id", "collection", "bbox", "geometry", "coordinates",
             "properties", "datetime", "assets", "href", "links", "rel",
             "s2:processing_baseline")


def one_line(e: BaseException, kinds=(M3leoError,)) -> str:
    assert isinstance(e, kinds), f"{type(e).__name__} escaped: {repr(e)[:300]}"
    msg = str(e)
    assert msg and "\n" not in msg, f"not one line: {msg[:300]!r}"
    return msg


# ---- STAC ---------------------------------------------------------------------------------
def _stac_seed(kind: str) -> object:
    if kind == "real":
        if not REAL_ITEM.is_file():
            pytest.skip("../shared/s1data is absent")
        return json.loads(REAL_ITEM.read_text())
    return seeds.stac_items()


@pytest.mark.parametrize("kind", ["generated", "real"])
@pytest.mark.parametrize("deep", DEPTHS)
def test_fuzzed_stac(tmp_path, kind, deep):
    seed = _stac_seed(kind)
    path = tmp_path / "items.json"
    seen = Counter()

    def check(blob: bytes) -> None:
        path.write_bytes(blob)
        try:
            items = load_index(path)
            src = LocalRasterSource(root=str(path))
            src.check()
        except Exception as e:  # noqa: BLE001 - the property under test
            msg = one_line(e, (BadInput,))
            assert "items.json" in msg, msg
            seen["error"] += 1
            return
        seen["ok"] += 1
        for it in items:  # what the R-tree and the period filter will use
            assert isinstance(it.id, str) and isinstance(it.collection, str)
            assert len(it.bbox) == 4 and all(math.isfinite(v) for v in it.bbox)
            assert it.datetime is None or it.datetime.tzinfo is not None
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in it.assets.items())
        src._index("sentinel-2-l2a")

    run_fuzz(mutated_json_bytes(seed, STAC_KEYS), check, 40, deep)
    assert seen["ok"] and seen["error"], seen


# ---- AOI files ----------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".geojson", ".wkt"])
@pytest.mark.parametrize("deep", DEPTHS)
def test_fuzzed_aoi(tmp_path, suffix, deep):
    path = tmp_path / f"aoi{suffix}"
    seen = Counter()
    if suffix == ".wkt":
        text = shapely.geometry.shape(seeds.aoi_geojson()["features"][0]["geometry"]).wkt
        strategy = byte_damage(text.encode()) | st.sampled_from(
            [b"POLYGON ((0 0, 1 0, 1 1, 0 0", b"POLYGON ((nan 0, 1 0, 1 1, nan 0))",
             b"POINT (1 2)", b"POLYGON EMPTY", b"\xff\xfe", b"POLYGON ((0 0, 1e308 0, 1 1, 0 0))"])
    else:
        strategy = mutated_json_bytes(seeds.aoi_geojson(), ("type", "features", "geometry",
                                                            "coordinates"))

    def check(blob: bytes) -> None:
        path.write_bytes(blob)
        try:
            name, geom = load_aoi(str(path))
        except Exception as e:  # noqa: BLE001
            assert str(path) in one_line(e, (BadInput,))
            seen["error"] += 1
            return
        seen["ok"] += 1
        assert geom.is_valid and geom.area > 0 and name == "aoi"
        assert all(math.isfinite(v) for v in geom.bounds)

    run_fuzz(strategy, check, 40, deep)
    assert seen["ok"] and seen["error"], seen


# ---- CMR (ASF search) -----------------------------------------------------------------------
class CannedCmr(LoopbackServer):
    """A loopback CMR that answers every search with the same (possibly damaged) body."""

    def __init__(self) -> None:
        self.body = b"{}"
        self.after: str | None = None  # a CMR-Search-After header on every answer
        self.posts = 0
        outer = self

        class H(QuietHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.posts += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if outer.after is not None:
                    self.send_header("CMR-Search-After", outer.after)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

        super().__init__(H)


@pytest.fixture(scope="module")
def cmr_page(tmp_path_factory) -> dict:
    from tests.sources.asf_server import umm_item

    product = read_product(seeds.write_safe(seeds.safe_parts(), tmp_path_factory.mktemp("p")))
    items = [umm_item(product, "http://127.0.0.1:1", size=4_000_000_000, md5="0" * 32)]
    items.append(umm_item(product, "http://127.0.0.1:1", burst=product.burst_ids[0], size=99))
    return {"hits": 2, "took": 1, "items": items}


CMR_KEYS = ("items", "hits", "umm", "meta", "GranuleUR", "TemporalExtent", "RangeDateTime",
            "BeginningDateTime", "EndingDateTime", "GPolygons", "Points", "Longitude",
            "Latitude", "AdditionalAttributes", "Name", "Values", "OrbitNumber",
            "CollectionReference", "ShortName", "RelatedUrls", "URL", "native-id",
            "concept-id", "DataGranule", "Identifiers", "Platforms")


@pytest.mark.parametrize("deep", DEPTHS)
def test_fuzzed_cmr_answers(cmr_page, deep):
    server = CannedCmr().start()
    aoi = shapely.box(-128.2, 52.0, -127.9, 52.2)
    seen = Counter()

    def check(blob: bytes) -> None:
        server.body = blob
        try:
            prods = search_products(aoi, dt.date(2025, 4, 1), dt.date(2025, 5, 1),
                                    host=server.host)
        except Exception as e:  # noqa: BLE001
            one_line(e, (PermanentError, TransientError))
            seen["error"] += 1
            return
        seen["ok"] += 1
        for p in prods:  # what pairing and the download cache will use
            assert isinstance(p.start, dt.datetime) and isinstance(p.relative_orbit, int)
            assert p.footprint.is_valid and not p.footprint.is_empty
            assert p.size is None or p.size >= 0
            assert p.url is None or isinstance(p.url, str)

    try:
        run_fuzz(mutated_json_bytes(cmr_page, CMR_KEYS), check, 30, deep)
    finally:
        server.close()
    assert seen["ok"] and seen["error"], seen


@pytest.mark.timeout(120)
@pytest.mark.parametrize("items", ["same", "none"])
def test_cmr_that_never_stops_paging_is_refused(cmr_page, items):
    """A server that answers every page with the same (or no) results and a search-after token
    would keep asf_search paging forever: a hang, with memory growing."""
    server = CannedCmr().start()
    server.after = "again"
    server.body = json.dumps({**cmr_page, "hits": 10**9,
                              "items": cmr_page["items"] if items == "same" else []}).encode()
    try:
        with pytest.raises(PermanentError, match="CMR keeps answering"):
            search_products(shapely.box(-128.2, 52.0, -127.9, 52.2), dt.date(2025, 4, 1),
                            dt.date(2025, 5, 1), host=server.host)
        assert server.posts == (2 if items == "same" else 1)  # stopped at once
    finally:
        server.close()


# ---- Earth Engine NPY answers ---------------------------------------------------------------
BANDS, SHAPE = ["B2", "count"], (8, 8)


@st.composite
def hostile_headers(draw) -> bytes:
    descr = draw(st.sampled_from([
        "[('B2', '<u2'), ('count', '<u2')]", "'|O'", "[('B2', '|O'), ('count', '<u2')]",
        "[('B2', '<U5'), ('count', '<u2')]", "[('B2', '<u2', (3,)), ('count', '<u2')]",
        "[('B2', '<f4'), ('count', '<i8')]", "'<u2'", "[('B2', 'xx')]", "[]"]))
    shape = draw(st.sampled_from(["(8, 8)", "(100000000000, 100000000000)", "()", "(-1, 8)",
                                  "(8,)", "(8, 8, 2)", "'a'", "(8.5, 8)"]))
    fortran = draw(st.sampled_from(["False", "True", "0"]))
    header = f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}"
    return Blob(seeds.npy_with_header(header, bytes(draw(st.integers(0, 300)))))


@pytest.mark.parametrize("deep", DEPTHS)
def test_fuzzed_earth_engine_npy(deep):
    good = seeds.npy_bytes(BANDS, SHAPE)
    seen = Counter()

    def check(blob: bytes) -> None:
        try:
            px = decode_npy(blob, BANDS, SHAPE)
        except Exception as e:  # noqa: BLE001
            one_line(e, (PermanentError, TransientError))
            seen["error"] += 1
            return
        seen["ok"] += 1
        assert set(px) == set(BANDS)
        assert all(a.shape == SHAPE and a.dtype.kind in "biuf" for a in px.values())

    assert decode_npy(good, BANDS, SHAPE)["count"].tolist() == np.full(SHAPE, 101).tolist()
    run_fuzz(byte_damage(good) | hostile_headers(), check, 60, deep)
    assert seen["ok"] and seen["error"], seen


def test_json_mutator_changes_something():
    """The JSON mutator is not a no-op (else every fuzz above would test the seed only)."""
    from hypothesis import given, settings

    seed = seeds.stac_items()

    @settings(max_examples=20, derandomize=True, database=None)
    @given(mutated_json(seed, STAC_KEYS))
    def prop(doc):
        assert doc != seed

    prop()


@pytest.mark.parametrize("deep", DEPTHS)
def test_fuzzed_earth_engine_answers_through_the_client(deep, monkeypatch):
    """Any status with any body, or a 200 with a damaged NPY, through the real `ee` client
    and `run_unit`: an outcome per tile (failed, with a one-line reason), never an exception."""
    import ee
    import googleapiclient.http

    from m3leo_tiles.grid import TileRef
    from m3leo_tiles.modalities import get_modality
    from m3leo_tiles.periods import STATIC
    from m3leo_tiles.runner.engine import UnitRetryPolicy, run_unit
    from m3leo_tiles.sources.base import WorkUnit
    from m3leo_tiles.sources.earthengine import EarthEngineSource
    from tests.sources.ee_server import EEServer

    monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda s: None)
    ref = TileRef.from_id("31N-0100-1200")
    m = get_modality("dem")
    shape = ref.grid_at(m.res).shape
    good = seeds.npy_bytes([*m.bands, "dem_valid"], shape, "<f4")
    error = json.dumps({"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}})
    answers = st.one_of(
        # a flipped data byte is still a valid answer: only cut bodies and hostile headers
        st.tuples(st.just("raw"), byte_damage(good).filter(lambda b: len(b) < len(good))
                  | hostile_headers()),
        st.tuples(st.just("raw-error"), st.sampled_from([400, 401, 403, 404, 429, 500, 503]),
                  byte_damage(error.encode()) | st.binary(max_size=40)))
    seen = Counter()
    with EEServer() as server:
        src = EarthEngineSource(project="p", access_token="test", url=server.url,
                                client_retries=1)

        def check(answer: tuple) -> None:
            server.script = [answer] * 3  # the client's own retries see the same answer
            outs = run_unit(src, WorkUnit(m.name, STATIC.label, (ref.id,)), {ref.id: ref}, m,
                            STATIC, "unused", {ref.id: 0}, 0, UnitRetryPolicy())
            (o,) = outs
            assert o.status == "failed", o
            assert o.error and "\n" not in o.error and o.error.split(":")[0] in (
                "TransientError", "PermanentError", "AuthError"), o.error
            seen[o.error.split(":")[0]] += 1

        run_fuzz(answers, check, 20, deep)
    assert seen["TransientError"] and seen["PermanentError"], seen


@pytest.mark.parametrize("deep", DEPTHS)
def test_fuzzed_item_json_in_a_raster_folder(tmp_path, deep):
    """A plain directory archive (Earth Search layout: one folder per scene, its STAC JSON
    beside the band files) whose JSON is damaged: the folder is dated from its name instead,
    with a warning; never an error."""
    import rasterio
    from rasterio.transform import from_origin

    scene = tmp_path / "S2A_31NCA_20210701_0_L2A"
    scene.mkdir()
    for band in ("B02", "B04", "SCL"):
        with rasterio.open(scene / f"{band}.tif", "w", driver="GTiff", width=8, height=8,
                           count=1, dtype="uint16", crs="EPSG:32631",
                           transform=from_origin(500000, 60000, 20, 20)) as ds:
            ds.write(np.full((8, 8), 1000, np.uint16), 1)
    item = {"type": "Feature", "id": scene.name, "collection": "sentinel-2-l2a",
            "properties": {"datetime": "2021-07-02T10:00:00Z", "s2:processing_baseline": "04.00"}}
    seen = Counter()

    def check(blob: bytes) -> None:
        (scene / f"{scene.name}.json").write_bytes(blob)
        (it,) = load_index(tmp_path)
        assert it.datetime is not None and it.datetime.tzinfo is not None
        seen[str(it.datetime.date())] += 1

    run_fuzz(mutated_json_bytes(item, ("properties", "datetime")), check, 30, deep)
    assert seen["2021-07-01"] and seen["2021-07-02"], seen  # from the name / from the JSON


def test_a_403_whose_body_is_not_an_error_object_fails_permanently_in_one_line(monkeypatch):
    """The deep fuzz's find: a 403 answering the JSON `0` made googleapiclient's own retry
    check index into an int (TypeError); the unit must fail with our taxonomy's one line."""
    import ee
    import googleapiclient.http

    from m3leo_tiles.grid import TileRef
    from m3leo_tiles.modalities import get_modality
    from m3leo_tiles.periods import STATIC
    from m3leo_tiles.runner.engine import UnitRetryPolicy, run_unit
    from m3leo_tiles.sources.base import WorkUnit
    from m3leo_tiles.sources.earthengine import EarthEngineSource
    from tests.sources.ee_server import EEServer

    monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda s: None)
    ref = TileRef.from_id("31N-0100-1200")
    m = get_modality("dem")
    with EEServer() as server:
        src = EarthEngineSource(project="p", access_token="test", url=server.url,
                                client_retries=1)
        for body in (b"0", b"[]", b'"x"', b'{"error": 3}'):
            server.script = [("raw-error", 403, body)] * 3
            (o,) = run_unit(src, WorkUnit(m.name, STATIC.label, (ref.id,)), {ref.id: ref}, m,
                            STATIC, "unused", {ref.id: 0}, 0, UnitRetryPolicy())
            assert o.status == "failed" and o.error and "\n" not in o.error, (body, o)
            assert o.error.split(":")[0] in ("PermanentError", "TransientError"), (body, o.error)
