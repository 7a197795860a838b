"""ASF search (NASA CMR through the real `asf_search` client) turned into S1Product records;
burst results (one per burst acquisition, polarisations merged) carry what `burst_refs` needs:
the source SLC, swath, burst index and, per polarisation, the TIFF and XML URLs.

asf_search talks to NASA CMR (`POST https://{host}/search/granules.umm_json`); `host` lets
tests point it at a loopback server. Because the client always builds https URLs, a plain-
http host is reached through an adapter that rewrites the scheme for that host only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Collection
from typing import Any

import requests
import shapely
from requests.adapters import HTTPAdapter

from ..errors import BadInput, PermanentError, TransientError
from .products import S1Product

log = logging.getLogger(__name__)


class _PlainHttpAdapter(HTTPAdapter):
    """Sends https://HOST requests as http:// (loopback test servers, local mirrors)."""

    def send(self, request, **kwargs):  # type: ignore[override]
        if request.url.startswith("https://"):
            request.url = "http://" + request.url[len("https://"):]
        return super().send(request, **kwargs)


def search_session(host: str | None = None, plain_http: bool | None = None) -> requests.Session:
    """An ASFSession; for a 127.0.0.1/localhost host, https is rewritten to http."""
    import asf_search

    asf_search.REPORT_ERRORS = False  # never POST our errors to ASF's reporting service
    session = asf_search.ASFSession()
    if host and (plain_http if plain_http is not None else
                 host.split(":")[0] in ("127.0.0.1", "localhost")):
        session.mount(f"https://{host}", _PlainHttpAdapter())
    return session


def _date(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        d = value
    else:
        d = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return d.replace(tzinfo=None) if d.tzinfo is None else \
        d.astimezone(dt.UTC).replace(tzinfo=None)


def product_from_result(r: Any) -> S1Product:
    """An S1Product from an asf_search ASFProduct (SLC or burst)."""
    p = r.properties
    umm = getattr(r, "umm", {}) or {}
    fp = shapely.geometry.shape(r.geometry)
    if fp.is_empty or fp.geom_type not in ("Polygon", "MultiPolygon") or not fp.is_valid:
        raise ValueError(f"unusable footprint ({fp.geom_type}, "
                         f"{'empty' if fp.is_empty else 'invalid'})")
    burst = p.get("burst") or {}
    full = burst.get("fullBurstID") if burst else None
    name = p.get("sceneName") or p.get("fileID")
    pols = tuple(x for x in str(p.get("polarization") or "").replace("+", " ").split() if x)
    attrs = {a.get("Name"): (a.get("Values") or [None])[0]
             for a in umm.get("AdditionalAttributes", [])}
    extra = {"frame": p.get("frameNumber"), "asc_node_time": attrs.get("ASC_NODE_TIME"),
             "file_id": p.get("fileID")}
    if full:
        extra["burst_footprints"] = {full: fp}
        extra["subswath"] = burst.get("subswath")
    slc = str((umm.get("InputGranules") or [""])[0]).removesuffix("-SLC")
    size = p.get("bytes")
    if full:
        extra["burst"] = {"slc": slc, "swath": str(burst.get("subswath") or "").upper(),
                          "index": int(burst.get("burstIndex") or 0),
                          "files": {pols[0] if pols else "VV": {
                              "name": str(name), "url": p.get("url"),
                              "xml_url": (p.get("additionalUrls") or [None])[0],
                              "size": int(float(size)) if size is not None else None,
                              "md5": p.get("md5sum")}}}
    return S1Product(
        name=str(name), platform=(slc or str(name))[:3],
        start=_date(p["startTime"]), stop=_date(p["stopTime"]),
        relative_orbit=int(p["pathNumber"]), absolute_orbit=int(p.get("orbit") or 0),
        pass_direction=str(p.get("flightDirection") or "").upper(), polarisations=pols,
        footprint=fp, url=p.get("url"), size=int(float(size)) if size is not None else None,
        md5=p.get("md5sum"), burst_ids=(full,) if full else (), extra=extra)


def _all_pages(asf_search: Any, args: dict) -> list:
    """asf_search.search, page by page, refusing an answer that never ends: asf_search follows
    CMR-Search-After for as long as the server sends it, so a server (or proxy) that keeps
    answering the same or an empty page would make it loop forever."""
    out: list = []
    seen: set[tuple[object, object]] = set()
    for page in asf_search.search_generator(**args):
        keys = {(p.meta.get("concept-id"), p.properties.get("fileID")) for p in page}
        if not page.searchComplete and (not page or keys <= seen):
            raise PermanentError("ASF search: CMR keeps answering "
                                 f"{'an empty page' if not page else 'the same results'} "
                                 "and asks for more; stopping")
        seen |= keys
        out.extend(page)
    return out


def search_pages(asf_search: Any, args: dict, what: str = "ASF search") -> list:
    """Every page of one asf_search query, its failures in our taxonomy: 5xx and network
    errors are transient, a refused query and an unreadable answer permanent."""
    try:
        return _all_pages(asf_search, args)
    except asf_search.ASFSearch5xxError as e:
        raise TransientError(f"{what} failed (server error): {e}") from e
    except asf_search.ASFSearch4xxError as e:
        raise PermanentError(f"{what} refused the query: {e}") from e
    except (asf_search.ASFSearchError, requests.RequestException) as e:
        raise TransientError(f"{what} failed: {e}") from e
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        # asf_search reads CMR's JSON without checks: a malformed answer lands here
        raise PermanentError(f"{what}: unreadable answer from CMR "
                             f"({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None


def _query(aoi: shapely.Geometry | None, start: dt.datetime, end: dt.datetime, burst: bool,
           host: str | None, session: requests.Session | None, max_results: int | None = None,
           polarisation: str | None = None) -> list[S1Product]:
    """One CMR search (every page) through asf_search, its answers read into S1Products;
    errors mapped onto our taxonomy (5xx transient, 4xx permanent)."""
    import asf_search

    asf_search.REPORT_ERRORS = False
    kw: dict[str, object] = {"session": session or search_session(host)}
    if host:
        kw["host"] = host
    opts = asf_search.ASFSearchOptions(**kw)
    args = dict(start=start.isoformat() + "Z", end=end.isoformat() + "Z",
                dataset=asf_search.DATASET.SLC_BURST if burst else asf_search.DATASET.SENTINEL1,
                beamMode=asf_search.BEAMMODE.IW, maxResults=max_results, opts=opts)
    if aoi is not None:
        # CMR wants counter-clockwise rings (hulls come clockwise: asf_search would warn)
        args["intersectsWith"] = shapely.to_wkt(shapely.orient_polygons(aoi),
                                                rounding_precision=6)
    if not burst:
        args["processingLevel"] = asf_search.PRODUCT_TYPE.SLC
    if polarisation:
        args["polarization"] = polarisation
    results = search_pages(asf_search, args)
    out = []
    for r in results:
        try:
            out.append(product_from_result(r))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError,
                shapely.errors.ShapelyError) as e:
            log.warning("ignoring unreadable search result %s: %s",
                        r.properties.get("fileID"), e)
    return out


def search_products(aoi: shapely.Geometry, start: dt.date, end: dt.date, burst: bool = False,
                    host: str | None = None, session: requests.Session | None = None,
                    max_results: int | None = None,
                    polarisation: str | None = None) -> list[S1Product]:
    """IW SLC products (or SLC bursts) intersecting `aoi` with start in [start, end)."""
    if end <= start:
        raise BadInput(f"search window ends ({end}) before it starts ({start})")
    lo = dt.datetime.combine(start, dt.time())
    hi = dt.datetime.combine(end, dt.time())
    out = _query(aoi.simplify(0.01), lo, hi, burst, host, session, max_results, polarisation)
    out = [p for p in out if lo <= p.start < hi]
    if burst:
        out = merge_polarisations(out)
    out.sort(key=lambda p: (p.start, p.name))
    return out


def frame_bursts(slcs: Collection[str], aoi: shapely.Geometry | None, start: dt.datetime,
                 end: dt.datetime, host: str | None = None, session: requests.Session | None = None
                 ) -> dict[str, list[S1Product]]:
    """The IW bursts of the SLCs `slcs` that intersect `aoi` (None: anywhere) and overlap
    [start, end], from ONE CMR burst search: per SLC, its bursts (polarisations merged) by
    swath and burst index. ASF names each burst's source SLC in UMM InputGranules
    (`extra["burst"]["slc"]`); SLCs with no burst there are absent from the answer."""
    if end <= start:
        raise BadInput(f"search window ends ({end}) before it starts ({start})")
    want = set(slcs)
    found = [p for p in _query(aoi, start, end, True, host, session)
             if p.extra.get("burst", {}).get("slc") in want]
    out: dict[str, list[S1Product]] = {}
    for p in merge_polarisations(found):
        out.setdefault(p.extra["burst"]["slc"], []).append(p)
    for ps in out.values():
        ps.sort(key=lambda p: (p.extra["burst"]["swath"], p.extra["burst"]["index"]))
    return out


def merge_polarisations(products: list[S1Product]) -> list[S1Product]:
    """ASF lists a burst once per polarisation; one acquisition of a burst is one product
    (VV first), its files per polarisation in `extra["burst"]["files"]`, so pairing and the
    processor see VV+VH together as they do for SLC products."""
    groups: dict[tuple, list[S1Product]] = {}
    rest = []
    for p in products:
        b = p.extra.get("burst")
        if b:
            groups.setdefault((b["slc"], p.burst_ids[0], p.start), []).append(p)
        else:
            rest.append(p)
    for parts in groups.values():
        parts.sort(key=lambda q: (q.polarisations[:1] != ("VV",), q.polarisations))
        first = parts[0]
        files: dict[str, dict] = {}
        for q in parts:
            files.update(q.extra["burst"]["files"])
        burst = dict(first.extra["burst"], files=files)
        rest.append(dataclasses.replace(
            first, polarisations=tuple(files), extra=dict(first.extra, burst=burst)))
    return rest
