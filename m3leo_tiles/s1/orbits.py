"""Sentinel-1 orbit files (EOF): parse them, pick one by ONE rule, fetch precise ones.

Formats: ESA Earth Explorer File Format (PE-TN-ESA-GS-0001) as used by the S1 POD service
(GMES-GSEG-EOPG-FS-10-0075: AUX_POEORB ~5 cm, ~3 weeks late; AUX_RESORB ~10 cm, hours late).
The rule, used by the ASF source and the processor alike (`choose`):

1. the file's validity window covers the needed span: the sensing span +- MARGIN (the
   processor's own window already carries that padding and is passed as is);
2. the mission matches (S1A/S1B/S1C/S1D);
3. AUX_POEORB before AUX_RESORB;
4. among those, the newest production (creation) time.

Fetching goes through ASF's `s1-orbits` client (its service answers `GET /scene/{scene}` with
a redirect to the EOF in its public bucket); what comes back is checked against the rule and
renamed into the orbit directory atomically. Without any usable file the processor falls back
to the annotation orbit and an `OrbitWarning` says so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import shutil
import tempfile
import threading
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OrbitFileError
from .products import S1Product

log = logging.getLogger(__name__)

KINDS = ("AUX_POEORB", "AUX_RESORB")  # in order of preference
MARGIN = dt.timedelta(seconds=30)  # validity needed either side of the sensing span
ENV_URL = "M3LEO_S1_ORBITS_URL"  # s1-orbits service root (default: ASF's)
_NAME = re.compile(r"(S1[ABCD])_OPER_(AUX_(?:POE|RES)ORB)_OPOD_(\d{8}T\d{6})_V(\d{8}T\d{6})_"
                   r"(\d{8}T\d{6})")
_API_LOCK = threading.Lock()

__all__ = ["KINDS", "MARGIN", "OrbitHeader", "OrbitWarning", "StateVectors", "choose",
           "fetch_orbit", "find_eof", "find_orbit", "header_from_name", "parse_eof",
           "read_header"]


class OrbitWarning(UserWarning):
    """No precise/restituted orbit: the processor falls back to the annotation orbit."""


@dataclass(frozen=True)
class OrbitHeader:
    path: str
    mission: str  # S1A ...
    kind: str  # AUX_POEORB | AUX_RESORB
    created: dt.datetime
    start: dt.datetime  # validity
    stop: dt.datetime

    def covers(self, start: dt.datetime, stop: dt.datetime) -> bool:
        """Validity covers [start, stop] (callers add MARGIN; see `choose`)."""
        return self.start <= start and stop <= self.stop


@dataclass(frozen=True)
class StateVectors:
    """UTC times and ECEF position [m] / velocity [m/s] (n, 3) of one orbit file."""

    header: OrbitHeader
    times: np.ndarray  # datetime64[us]
    position: np.ndarray
    velocity: np.ndarray
    absolute_orbit: np.ndarray

    def window(self, start: dt.datetime, stop: dt.datetime,
               margin: dt.timedelta = dt.timedelta(seconds=60)) -> StateVectors:
        """Only the vectors within [start - margin, stop + margin] (what an interpolator needs)."""
        a = np.datetime64(start - margin, "us")
        b = np.datetime64(stop + margin, "us")
        m = (self.times >= a) & (self.times <= b)
        return StateVectors(self.header, self.times[m], self.position[m], self.velocity[m],
                            self.absolute_orbit[m])


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip().removeprefix("UTC="))


def _stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%S")


def header_from_name(name: str, path: str = "") -> OrbitHeader | None:
    """Kind, mission, creation and validity from an EOF file name (bucket listings)."""
    m = _NAME.search(Path(name).name)
    if not m:
        return None
    return OrbitHeader(path or name, m.group(1), m.group(2), _stamp(m.group(3)),
                       _stamp(m.group(4)), _stamp(m.group(5)))


#: what ElementTree, float(), int() and datetime parsing raise on a damaged EOF
EOF_PARSE_ERRORS = (ValueError, TypeError, AttributeError, IndexError, ArithmeticError,
                    SyntaxError, OSError)


def eof_error(path: str | Path, e: BaseException) -> OrbitFileError:
    """One line naming the file and what is wrong with it."""
    first = (str(e).splitlines() or [""])[0][:300]
    return OrbitFileError(f"{Path(path).name}: unreadable orbit file: {type(e).__name__}: "
                          f"{first}")


def read_header(path: str | Path) -> OrbitHeader:
    """File type, mission and validity from the EOF's fixed header (the name when absent)."""
    try:
        return _read_header(Path(path))
    except OrbitFileError:
        raise
    except EOF_PARSE_ERRORS as e:
        raise eof_error(path, e) from None


def _read_header(p: Path) -> OrbitHeader:
    head = p.read_bytes()[:4096].decode("utf-8", "replace")

    def tag(t: str) -> str | None:
        mm = re.search(rf"<{t}>([^<]*)</{t}>", head)
        return mm.group(1) if mm else None

    by_name = header_from_name(head) or header_from_name(p.name)
    kind = tag("File_Type") or (by_name.kind if by_name else "")
    mission_text = tag("Mission") or ""
    mission = (by_name.mission if by_name else
               ("S1" + mission_text[-1] if mission_text.startswith("Sentinel-1") else ""))
    start, stop, created = tag("Validity_Start"), tag("Validity_Stop"), tag("Creation_Date")
    if kind not in KINDS or not ((start and stop) or by_name):
        raise OrbitFileError(f"{p.name}: not a Sentinel-1 POEORB/RESORB orbit file")
    if start and stop:
        t0, t1 = _utc(start), _utc(stop)
    else:  # a header without validity: the standard file name carries it
        assert by_name is not None
        t0, t1 = by_name.start, by_name.stop
    made = _utc(created) if created else (by_name.created if by_name else t0)
    return OrbitHeader(str(p), mission, kind, made, t0, t1)


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
        t.append(np.datetime64(_utc(osv.findtext("UTC") or ""), "us"))
        pos.append([float(osv.findtext(k) or "") for k in ("X", "Y", "Z")])
        vel.append([float(osv.findtext(k) or "") for k in ("VX", "VY", "VZ")])
        orb.append(int(osv.findtext("Absolute_Orbit") or 0))
    if not t:
        raise OrbitFileError(f"{Path(path).name}: no state vectors")
    if not (np.isfinite(pos).all() and np.isfinite(vel).all()):
        raise OrbitFileError(f"{Path(path).name}: state vectors are not finite numbers")
    order = np.argsort(np.array(t))
    return StateVectors(header, np.array(t)[order], np.array(pos)[order], np.array(vel)[order],
                        np.array(orb)[order])


def choose(headers: Iterable[OrbitHeader], mission: str, start: dt.datetime,
           stop: dt.datetime) -> OrbitHeader | None:
    """THE selection rule: covers [start, stop], same mission, POEORB first, newest first."""
    ok = [h for h in headers if (not h.mission or not mission or h.mission == mission)
          and h.kind in KINDS and h.covers(start, stop)]
    if not ok:
        return None
    return min(ok, key=lambda h: (KINDS.index(h.kind), -h.created.timestamp(), h.path))


def _local_headers(orbit_dir: str | Path | None) -> list[OrbitHeader]:
    if not orbit_dir or not Path(orbit_dir).is_dir():
        return []
    out = []
    for p in sorted(Path(orbit_dir).glob("*.EOF")):
        try:
            out.append(read_header(p))
        except (ValueError, OSError) as e:
            log.debug("ignoring %s: %s", p.name, e)
    return out


def find_eof(orbit_dir: str | Path | None, mission: str, start: dt.datetime,
             stop: dt.datetime) -> OrbitHeader | None:
    """The best EOF file in a directory for an already padded span [start, stop]."""
    return choose(_local_headers(orbit_dir), mission, start, stop)


def find_orbit(product: S1Product, orbit_dir: str | Path | None) -> OrbitHeader | None:
    """The best local orbit file for a product: its sensing span +- MARGIN."""
    return find_eof(orbit_dir, product.platform, product.start - MARGIN, product.stop + MARGIN)


def scene_name(product: S1Product) -> str:
    """An SLC-style scene name for the s1-orbits service, built from the product's mission
    and sensing times (all the service reads from it), so SLCs, bursts and assembled SAFEs
    are asked for the same way."""
    return (f"{product.platform}_IW_SLC__1SDV_{product.start:%Y%m%dT%H%M%S}_"
            f"{product.stop:%Y%m%dT%H%M%S}_{product.absolute_orbit % 10**6:06d}_000000_0000")


@contextlib.contextmanager
def _service(url: str | None) -> Iterator[object]:
    """s1_orbits with its service root pointed at `url` (one caller at a time)."""
    import s1_orbits
    import s1_orbits.s1_orbits as impl

    with _API_LOCK:
        saved = impl.API_URL
        if url:
            impl.API_URL = url.rstrip("/") + ("" if url.rstrip("/").endswith("/scene")
                                              else "/scene")
        try:
            yield s1_orbits
        finally:
            impl.API_URL = saved


def fetch_orbit(product: S1Product, orbit_dir: str | Path,
                url: str | None = None) -> OrbitHeader | None:
    """The orbit file for a product: a local one, else fetched through s1-orbits.

    The fetched file must satisfy `choose` for the product (a service answer that does not
    cover it is discarded) and lands in `orbit_dir` by an atomic rename, so concurrent
    workers never see half a file. Returns None with an OrbitWarning when nothing usable can
    be had: the processor then uses the annotation orbit.
    """
    cache = Path(orbit_dir)
    cache.mkdir(parents=True, exist_ok=True)
    hit = find_orbit(product, cache)
    if hit is not None:
        return hit
    import requests

    url = url or os.environ.get(ENV_URL) or None
    why = ""
    tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache))
    try:
        with _service(url) as client:
            got = Path(client.fetch_for_scene(scene_name(product), dir=tmp))  # type: ignore[attr-defined]
        h = read_header(got)
        if choose([h], product.platform, product.start - MARGIN, product.stop + MARGIN) is None:
            why = (f"the service's {got.name} does not cover {product.start}..{product.stop} "
                   f"+- {MARGIN.total_seconds():.0f} s")
        else:
            os.replace(got, cache / got.name)
    except (requests.RequestException, OSError, ValueError, ET.ParseError) as e:
        why = f"s1-orbits failed: {type(e).__name__}: {e}"
    except Exception as e:  # s1_orbits' InvalidSceneError / OrbitNotFoundError
        if type(e).__module__.startswith("s1_orbits"):
            why = f"s1-orbits: {e}"
        else:
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    hit = find_orbit(product, cache)
    if hit is None:
        warnings.warn(f"no precise or restituted orbit for {product.name} ({why or 'none found'}"
                      "); falling back to the annotation orbit", OrbitWarning, stacklevel=2)
    return hit
