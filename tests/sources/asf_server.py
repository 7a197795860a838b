"""A loopback stand-in for NASA CMR search and ASF's data endpoint (tests only).

Granules are built from real S1 metadata (S1Product records scanned from real SAFE
annotation): UMM-G items with the attributes asf_search reads. Downloads support Range,
can cut a connection, corrupt a body, refuse without credentials or answer 202 first.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import urllib.parse

from m3leo_tiles.s1.products import S1Product
from tests.loopback import LoopbackServer, QuietHandler, serve_until_stdin_closes


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def umm_item(p: S1Product, base_url: str, burst: str | None = None, size: int = 0,
             md5: str = "", index: int = 1, pol: str | None = None,
             start: dt.datetime | None = None, stop: dt.datetime | None = None,
             footprint=None) -> dict:
    """A UMM-G granule for an SLC product, or for one of its bursts.

    Burst granules are laid out like ASF's SENTINEL-1_BURSTS collection: the burst's own
    times and footprint when given, `USE SERVICE API` URLs of the burst extractor
    (`/burst/{slc}/{swath}/{pol}/{index}.tiff` and `.xml`), and the source SLC in
    InputGranules. `p` is the SLC, or a catalogue burst naming its SLC in `extra["slc"]`.
    """
    slc = p.extra.get("slc", p.name)
    if burst is not None:
        import dataclasses

        p = dataclasses.replace(p, start=start or p.start, stop=stop or p.stop,
                                footprint=footprint if footprint is not None else p.footprint,
                                polarisations=(pol or p.polarisations[0],))
    ring = list(p.footprint.exterior.coords)
    attrs = {
        "PATH_NUMBER": str(p.relative_orbit), "FRAME_NUMBER": "166",
        "POLARIZATION": "+".join(p.polarisations) if burst is None else p.polarisations[0], "BEAM_MODE": "IW",
        "BEAM_MODE_TYPE": "IW", "PROCESSING_TYPE": "SLC" if burst is None else "S1BURST",
        "ASCENDING_DESCENDING": p.pass_direction, "ASF_PLATFORM": "Sentinel-1" + p.platform[-1],
        "BYTES": str(size), "MD5SUM": md5,
        "CENTER_LAT": str(p.footprint.centroid.y), "CENTER_LON": str(p.footprint.centroid.x),
        "ASC_NODE_TIME": p.extra.get("ascending_node_time", "") + "Z",
        "SV_POSITION_PRE": "-2064965.28,6434865.49,2090670.96,2025-04-06T02:19:50.000000",
        "SV_POSITION_POST": "-2056335.77,6460741.11,2019609.36,2025-04-06T02:20:00.000000",
        "SV_VELOCITY_PRE": "860.239634,2590.964968,-7090.378144,2025-04-06T02:19:50.000000",
        "SV_VELOCITY_POST": "865.662,2584.13,-7091.80,2025-04-06T02:20:00.000000",
    }
    name = p.name
    short = f"SENTINEL-1{p.platform[-1]}_SLC"
    if burst is not None:
        rel, bid, sw = burst.split("_")
        name = (f"S1_{int(bid):06d}_{sw}_{p.start:%Y%m%dT%H%M%S}_{p.polarisations[0]}_"
                f"{slc[-4:]}-BURST")
        short = "SENTINEL-1_BURSTS"
        attrs.update({"BURST_ID_FULL": burst, "BURST_ID_RELATIVE": bid,
                      "BURST_ID_ABSOLUTE": str(int(bid) * 10), "SUBSWATH_NAME": sw,
                      "BURST_INDEX": str(index), "SAMPLES_PER_BURST": "21000",
                      "BYTE_LENGTH": str(size), "AZIMUTH_TIME": _iso(p.start),
                      "AZIMUTH_ANX_TIME": "840.0"})
    slc_path = (f"{slc}/{burst.split('_')[2]}/{p.polarisations[0]}/{index}"
                if burst is not None else "")
    return {"meta": {"concept-id": f"G{abs(hash(name)) % 10**9}-ASF", "native-id": name},
            "umm": {
                "GranuleUR": name + ("-SLC" if burst is None else ""),
                "CollectionReference": {"ShortName": short},
                "TemporalExtent": {"RangeDateTime": {"BeginningDateTime": _iso(p.start),
                                                     "EndingDateTime": _iso(p.stop)}},
                "SpatialExtent": {"HorizontalSpatialDomain": {"Geometry": {"GPolygons": [
                    {"Boundary": {"Points": [{"Longitude": x, "Latitude": y}
                                             for x, y in ring]}}]}}},
                "OrbitCalculatedSpatialDomains": [{"OrbitNumber": p.absolute_orbit}],
                "AdditionalAttributes": [{"Name": k, "Values": [v]} for k, v in attrs.items()],
                "DataGranule": {"Identifiers": [{"IdentifierType": "ProducerGranuleId",
                                                 "Identifier": name}],
                                "ProductionDateTime": _iso(p.stop)},
                "Platforms": [{"ShortName": "Sentinel-1" + p.platform[-1],
                               "Instruments": [{"ShortName": "C-SAR"}]}],
                "RelatedUrls": [{"Type": "GET DATA", "URL": f"{base_url}/data/{name}.zip"}]
                if burst is None else [
                    {"Type": "USE SERVICE API", "URL": f"{base_url}/burst/{slc_path}.tiff"},
                    {"Type": "USE SERVICE API", "URL": f"{base_url}/burst/{slc_path}.xml"}],
                **({"InputGranules": [slc + "-SLC"]} if burst is not None else {}),
            }}


def _parse(text: str) -> dt.datetime | None:
    """A CMR temporal bound as a naive UTC datetime ('' -> None)."""
    if not text:
        return None
    d = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return d.astimezone(dt.UTC).replace(tzinfo=None) if d.tzinfo else d


def _form_shapes(form: dict) -> list:
    """The polygons and bounding boxes of a CMR search form (lon/lat shapely geometries)."""
    import shapely

    shapes = []
    for poly in form.get("polygon", []):
        v = [float(x) for x in poly.split(",")]
        shapes.append(shapely.Polygon(list(zip(v[::2], v[1::2], strict=True))))
    for box in form.get("bounding_box", []):
        shapes.append(shapely.box(*[float(x) for x in box.split(",")]))
    return shapes


def _matches(item: dict, form: dict) -> bool:
    """CMR's temporal and polygon filters, enough for the tests."""
    import shapely

    umm = item["umm"]
    rng = umm["TemporalExtent"]["RangeDateTime"]
    for t in form.get("temporal", []):
        a, b = (t.split(",") + ["", ""])[:2]
        if a and rng["EndingDateTime"] < a or b and rng["BeginningDateTime"] > b:
            return False
    for aoi in _form_shapes(form):
        pts = umm["SpatialExtent"]["HorizontalSpatialDomain"]["Geometry"]["GPolygons"][0]
        fp = shapely.Polygon([(q["Longitude"], q["Latitude"])
                              for q in pts["Boundary"]["Points"]])
        if not fp.intersects(aoi):
            return False
    return True


class FakeAsf(LoopbackServer):
    """CMR search + data downloads on 127.0.0.1; knobs for failures, state for assertions."""

    quiet_errors = True  # connections cut on purpose (and clients hanging up) are no failures

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.page_size = 250
        self.fail_search = 0  # answer the next N searches with an error + {"errors": [...]}
        self.fail_code = 500
        self.cut = 0  # next N downloads close the connection halfway
        self.corrupt = 0  # next N downloads send flipped bytes
        self.processing = 0  # next N downloads answer 202
        self.token: str | None = None  # required bearer token, if set
        self.basic: tuple[str, str] | None = None  # required basic credentials, if set
        self.redirect = False  # data URLs answer 307 to a signed URL on another host name
        self.edl: tuple[str, str] | None = None  # Earthdata Login OAuth dance, these creds
        self.forms: list[dict] = []
        self.served: dict[str, int] = {}  # burst extractor GETs per file
        self.slow = 0.0  # seconds the extractor takes before answering (races in tests)
        self.trickle = 0.0  # seconds between 64 KiB blocks of a body (kill -9 mid-download)
        # (collection, product, polarisation of a burst granule or None for an SLC)
        self.lazy: list[tuple[str, S1Product, str | None]] = []
        self._lazy_tree = None
        self._queries: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()
        super().__init__(self._handler())
        self.base = self.url

    def add_catalogue(self, products, burst: bool) -> None:
        """Serve many granules (a region's season) lazily: indexed once, their UMM-G built only
        for the pages a client asks for, each query's matches computed once for all pages."""
        import shapely

        for p in products:
            short = "SENTINEL-1_BURSTS" if burst else f"SENTINEL-1{p.platform[-1]}_SLC"
            # CMR lists a burst once per polarisation, an SLC once
            for pol in (p.polarisations if burst else (None,)):
                self.lazy.append((short, p, pol))
        self._lazy_tree = shapely.STRtree([p.footprint for _, p, _ in self.lazy])
        self._queries.clear()

    def _lazy_matches(self, form: dict) -> list[int]:

        key = json.dumps(sorted((k, v) for k, v in form.items() if k not in ("page_size",)))
        with self.lock:
            hit = self._queries.get(key)
        if hit is not None:
            return hit
        idx = set(range(len(self.lazy)))
        for aoi in _form_shapes(form):
            idx &= set(self._lazy_tree.query(aoi, predicate="intersects").tolist())
        shorts = set(form.get("shortName", []))
        windows = []
        for t in form.get("temporal", []):
            a, b = (t.split(",") + ["", ""])[:2]
            windows.append((_parse(a), _parse(b)))
        out = []
        for i in sorted(idx, key=lambda i: (self.lazy[i][1].start, self.lazy[i][1].name)):
            short, p, _ = self.lazy[i]
            if shorts and short not in shorts:
                continue
            if any(a and p.stop < a or b and p.start > b for a, b in windows):
                continue
            out.append(i)
        with self.lock:
            self._queries[key] = out
        return out

    def _lazy_item(self, i: int) -> dict:
        _, p, pol = self.lazy[i]
        return umm_item(p, self.base, burst=p.burst_ids[0] if pol else None, size=2**30,
                        md5="0" * 32, pol=pol, index=int(p.extra.get("index", 1)))

    def add_file(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return hashlib.md5(data).hexdigest()

    def _take(self, knob: str) -> bool:
        with self.lock:
            n = getattr(self, knob)
            if n > 0:
                setattr(self, knob, n - 1)
                return True
            return False

    def _handler(self):
        fake = self

        class H(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _json(self, code: int, body: object, headers: dict | None = None) -> None:
                self.send_body(code, json.dumps(body).encode(), "application/json", headers)

            def do_POST(self) -> None:
                fake.requests.append(("POST", self.path, dict(self.headers)))
                n = int(self.headers.get("Content-Length", 0))
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                fake.forms.append(form)
                if not self.path.startswith("/search/granules.umm_json"):
                    return self._json(404, {"errors": [f"no route {self.path}"]})
                if fake._take("fail_search"):
                    return self._json(fake.fail_code, {"errors": ["CMR refused the query"]})
                shorts = set(form.get("shortName", []))
                items = [i for i in fake.items if (not shorts or
                         i["umm"]["CollectionReference"]["ShortName"] in shorts)
                         and _matches(i, form)]
                lazy = fake._lazy_matches(form) if fake.lazy else []
                total = len(items) + len(lazy)
                after = int(self.headers.get("CMR-Search-After") or 0)
                page = items[after:after + fake.page_size]
                rest = fake.page_size - len(page)
                first = max(0, after - len(items))
                page += [fake._lazy_item(i) for i in lazy[first:first + rest]]
                nxt = after + len(page)
                hdr = {"CMR-Hits": str(total)}
                if nxt < total:
                    hdr["CMR-Search-After"] = str(nxt)
                self._json(200, {"hits": total, "took": 1, "items": page}, hdr)

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, dict(self.headers)))
                name = self.path.split("?")[0].rsplit("/", 1)[-1]
                port = fake.httpd.server_address[1]
                if self.path.startswith("/oauth/authorize"):  # "EDL", on host name localhost
                    want = base64.b64encode(":".join(fake.edl or ("", "")).encode()).decode()
                    if self.headers.get("Authorization", "") != f"Basic {want}":
                        return self._json(401, {"errors": ["bad EDL credentials"]})
                    state = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)["state"][0]
                    return self._redirect(f"http://127.0.0.1:{port}/login?code=ok&state={state}")
                if self.path.startswith("/login"):  # "ASF auth": code -> session cookie
                    state = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)["state"][0]
                    return self._redirect(state, {"Set-Cookie": "asf-urs=ok; Path=/"})
                if self.path.startswith("/s3/"):  # like S3: signature in the URL, no auth header
                    if "Authorization" in self.headers or "X-Amz-Signature=ok" not in self.path:
                        return self._json(400, {"errors": ["credentials sent to the bucket"]})
                    return self._send(fake.files[name])
                if self.path.startswith("/burst/"):  # the extractor: key = path after it
                    name = self.path.split("?")[0][len("/burst/"):]
                    with fake.lock:
                        fake.served[name] = fake.served.get(name, 0) + 1
                    if fake.slow:
                        import time

                        time.sleep(fake.slow)
                elif not self.path.startswith("/data/"):
                    return self._json(404, {"errors": ["not found"]})
                if name not in fake.files:
                    return self._json(404, {"errors": ["not found"]})
                auth = self.headers.get("Authorization", "")
                if fake.edl and "asf-urs=ok" not in self.headers.get("Cookie", ""):
                    return self._redirect(f"http://localhost:{port}/oauth/authorize?"
                                          f"client_id=asf&state={self.path}")
                if fake.token and auth != f"Bearer {fake.token}":
                    return self._json(401, {"errors": ["Unauthorized"]})
                if fake.basic:
                    want = base64.b64encode(":".join(fake.basic).encode()).decode()
                    if auth != f"Basic {want}":
                        return self._json(401, {"errors": ["Unauthorized"]})
                if fake._take("processing"):
                    return self._json(202, {"status": "processing"}, {"Retry-After": "0"})
                if fake.redirect:
                    port = fake.httpd.server_address[1]
                    self.send_response(307)
                    self.send_header("Location",
                                     f"http://localhost:{port}/s3/{name}?X-Amz-Signature=ok")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return self._send(fake.files[name])

            def _redirect(self, location: str, headers: dict | None = None) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _send(self, data: bytes) -> None:
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                body = data[start:]
                if fake._take("corrupt"):
                    body = bytes(b ^ 0xFF for b in body)
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if fake._take("cut"):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    import socket

                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fake.trickle:
                    import time

                    for i in range(0, len(body), 1 << 16):
                        self.wfile.write(body[i:i + (1 << 16)])
                        self.wfile.flush()
                        time.sleep(fake.trickle)
                    return
                self.wfile.write(body)

        return H


def serve_catalogue(region: str, start: str, end: str) -> None:
    """Serve a region's burst catalogue (tests/sources/burst_catalogue.py) until stdin closes;
    prints one JSON line first: url, host, bursts, frames, acquisitions (benchmarks run it
    with `tests.loopback.spawn`, so the catalogue's memory is not the planner's)."""
    from m3leo_tiles.grid.regions import load_aoi
    from tests.sources.burst_catalogue import catalogue

    _, aoi = load_aoi(region)
    bursts, frames = catalogue(aoi, dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    fake = FakeAsf()
    fake.page_size = 2000  # CMR's largest page
    fake.add_catalogue(frames, burst=False)
    fake.add_catalogue(bursts, burst=True)
    acq = {(b.relative_orbit, b.pass_direction, b.date) for b in bursts}
    serve_until_stdin_closes(fake, bursts=len(bursts), frames=len(frames),
                             acquisitions=len(acq))


if __name__ == "__main__":
    import sys

    serve_catalogue(*sys.argv[1:4])


def gunw_item(name: str, footprint, start: dt.datetime, stop: dt.datetime, base_url: str,
              size: int, md5: str, track: int = 64, direction: str = "ASCENDING") -> dict:
    """A UMM-G granule of an ARIA S1 GUNW standard product, as CMR lists them in ASF's
    SENTINEL-1_INTERFEROGRAMS collection (asf_search reads it as an ARIAS1GUNWProduct)."""
    ring = list(shapely_orient(footprint).exterior.coords)
    attrs = {"PATH_NUMBER": str(track), "FRAME_NUMBER": "120", "BEAM_MODE": "IW",
             "BEAM_MODE_TYPE": "IW", "PROCESSING_TYPE": "GUNW_STD",
             "ASCENDING_DESCENDING": direction, "POLARIZATION": "VV",
             "ASF_PLATFORM": "Sentinel-1 Interferogram (BETA)", "BYTES": str(size),
             "MD5SUM": md5, "VERSION": "2_0_4", "PERPENDICULAR_BASELINE": "85.0",
             "CENTER_LAT": str(footprint.centroid.y), "CENTER_LON": str(footprint.centroid.x)}
    return {"meta": {"concept-id": f"G{abs(hash(name)) % 10**9}-ASF", "native-id": name},
            "umm": {
                "GranuleUR": name,
                "CollectionReference": {"ShortName": "SENTINEL-1_INTERFEROGRAMS"},
                "TemporalExtent": {"RangeDateTime": {"BeginningDateTime": _iso(start),
                                                     "EndingDateTime": _iso(stop)}},
                "SpatialExtent": {"HorizontalSpatialDomain": {"Geometry": {"GPolygons": [
                    {"Boundary": {"Points": [{"Longitude": x, "Latitude": y}
                                             for x, y in ring]}}]}}},
                "OrbitCalculatedSpatialDomains": [{"OrbitNumber": 33000}],
                "AdditionalAttributes": [{"Name": k, "Values": [v]} for k, v in attrs.items()],
                "DataGranule": {"Identifiers": [{"IdentifierType": "ProducerGranuleId",
                                                 "Identifier": name}],
                                "ArchiveAndDistributionInformation": [
                                    {"Name": f"{name}.nc", "Format": "netCDF-4",
                                     "SizeInBytes": size,
                                     "Checksum": {"Value": md5, "Algorithm": "MD5"}}],
                                "ProductionDateTime": _iso(stop)},
                "Platforms": [{"ShortName": "SENTINEL-1A",
                               "Instruments": [{"ShortName": "C-SAR"}]}],
                "RelatedUrls": [{"Type": "GET DATA", "URL": f"{base_url}/data/{name}.nc"}],
                "InputGranules": [],
            }}


def shapely_orient(poly):
    """Counter-clockwise exterior ring, as CMR stores polygons."""
    import shapely

    return shapely.orient_polygons(poly)
