"""Sentinel-1 orbit files (EOF): parse state vectors, pick the best file for a product.

Precise orbits (AUX_POEORB, ~5 cm, ~3 weeks late) are preferred; restituted ones
(AUX_RESORB, ~10 cm, hours late) are the fallback. Without either the processor uses the
annotation's orbit (coarser, 10 s sampling, over the product only) and we warn.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...sar.orbit import EOF_PARSE_ERRORS, OrbitFileError, eof_error
from ..s1types import S1Product

log = logging.getLogger(__name__)

KINDS = ("AUX_POEORB", "AUX_RESORB")  # in order of preference
MARGIN = dt.timedelta(seconds=60)  # state vectors needed either side of the product
_NAME = re.compile(r"(S1[ABCD])_OPER_(AUX_(?:POE|RES)ORB)_OPOD_(\d{8}T\d{6})_V(\d{8}T\d{6})_(\d{8}T\d{6})")


class OrbitWarning(UserWarning):
    """No precise/restituted orbit: the processor falls back to the annotation orbit."""


@dataclass(frozen=True)
class OrbitHeader:
    path: str
    mission: str  # S1A ...
    kind: str  # AUX_POEORB | AUX_RESORB
    created: dt.datetime
    start: dt.datetime
    stop: dt.datetime

    def covers(self, start: dt.datetime, stop: dt.datetime) -> bool:
        return self.start <= start - MARGIN and stop + MARGIN <= self.stop


@dataclass(frozen=True)
class StateVectors:
    """UTC times and ECEF position [m] / velocity [m/s] (n, 3) of one orbit file."""

    header: OrbitHeader
    times: np.ndarray  # datetime64[us]
    position: np.ndarray
    velocity: np.ndarray
    absolute_orbit: np.ndarray

    def window(self, start: dt.datetime, stop: dt.datetime) -> StateVectors:
        """Only the vectors within [start - 60 s, stop + 60 s] (what an interpolator needs)."""
        a = np.datetime64(start - MARGIN, "us")
        b = np.datetime64(stop + MARGIN, "us")
        m = (self.times >= a) & (self.times <= b)
        return StateVectors(self.header, self.times[m], self.position[m], self.velocity[m],
                            self.absolute_orbit[m])


def _utc(text: str) -> dt.datetime:
    text = text.strip().removeprefix("UTC=")
    return dt.datetime.fromisoformat(text)


def read_header(path: str | Path) -> OrbitHeader:
    """File type, mission and validity from the EOF's fixed header (not just its name)."""
    try:
        return _read_header(Path(path))
    except OrbitFileError:
        raise
    except EOF_PARSE_ERRORS as e:
        raise eof_error(path, e) from None


def _read_header(p: Path) -> OrbitHeader:
    head = p.read_bytes()[:4096].decode("utf-8", "replace")
    m = _NAME.search(head) or _NAME.search(p.name)
    def tag(t: str) -> str | None:
        mm = re.search(rf"<{t}>([^<]*)</{t}>", head)
        return mm.group(1) if mm else None
    kind = tag("File_Type") or (m.group(2) if m else "")
    mission_text = tag("Mission") or ""
    mission = (m.group(1) if m else
               ("S1" + mission_text[-1] if mission_text.startswith("Sentinel-1") else ""))
    start, stop = tag("Validity_Start"), tag("Validity_Stop")
    if kind not in KINDS or not start or not stop:
        raise OrbitFileError(f"{p.name}: not a Sentinel-1 POEORB/RESORB orbit file")
    created = tag("Creation_Date")
    return OrbitHeader(str(p), mission, kind,
                       _utc(created) if created else _utc(m.group(3) if m else start),
                       _utc(start), _utc(stop))


def parse_eof(path: str | Path) -> StateVectors:
    """All OSV records of an EOF file, in time order."""
    header = read_header(path)
    try:
        return _parse_eof(path, header)
    except OrbitFileError:
        raise
    except EOF_PARSE_ERRORS as e:
        raise eof_error(path, e) from None


def _parse_eof(path: str | Path, header: OrbitHeader) -> StateVectors:
    root = ET.parse(path).getroot()
    t, pos, vel, orb = [], [], [], []
    for osv in root.iter("OSV"):
        t.append(np.datetime64(_utc(osv.findtext("UTC")), "us"))
        pos.append([float(osv.findtext(k)) for k in ("X", "Y", "Z")])
        vel.append([float(osv.findtext(k)) for k in ("VX", "VY", "VZ")])
        orb.append(int(osv.findtext("Absolute_Orbit")))
    if not t:
        raise OrbitFileError(f"{Path(path).name}: no state vectors")
    if not (np.isfinite(pos).all() and np.isfinite(vel).all()):
        raise OrbitFileError(f"{Path(path).name}: state vectors are not finite numbers")
    order = np.argsort(np.array(t))
    return StateVectors(header, np.array(t)[order], np.array(pos)[order], np.array(vel)[order],
                        np.array(orb)[order])


def find_orbit(product: S1Product, orbit_dir: str | Path | None) -> OrbitHeader | None:
    """The best local orbit file covering the product: POEORB first, then the newest RESORB."""
    if not orbit_dir or not Path(orbit_dir).is_dir():
        return None
    found = []
    for p in sorted(Path(orbit_dir).glob("*.EOF")):
        try:
            h = read_header(p)
        except (ValueError, OSError) as e:
            log.debug("ignoring %s: %s", p.name, e)
            continue
        if h.mission and h.mission != product.platform:
            continue
        if h.covers(product.start, product.stop):
            found.append(h)
    if not found:
        return None
    return min(found, key=lambda h: (KINDS.index(h.kind), -h.created.timestamp()))


def fetch_orbit(product: S1Product, cache_dir: str | Path) -> OrbitHeader | None:
    """A local orbit file, else one fetched with s1-orbits or sentineleof (cached in cache_dir).

    Returns None (with an OrbitWarning) when neither works: the processor then uses the
    annotation orbit.
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    hit = find_orbit(product, cache)
    if hit is not None:
        return hit
    why = "neither s1-orbits nor sentineleof is installed"
    try:
        import s1_orbits  # type: ignore[import-not-found]

        s1_orbits.fetch_for_scene(product.name, dir=cache)
        why = ""
    except ImportError:
        try:
            from eof.download import download_eofs  # type: ignore[import-not-found]

            download_eofs(orbit_dts=[product.start], missions=[product.platform], save_dir=str(cache))
            why = ""
        except ImportError:
            pass
        except Exception as e:  # network, service: degrade to annotation orbits
            why = f"sentineleof failed: {type(e).__name__}: {e}"
    except Exception as e:
        why = f"s1-orbits failed: {type(e).__name__}: {e}"
    hit = find_orbit(product, cache)
    if hit is None:
        warnings.warn(f"no precise or restituted orbit for {product.name} ({why or 'none found'}); "
                      "falling back to the annotation orbit", OrbitWarning, stacklevel=2)
    return hit
