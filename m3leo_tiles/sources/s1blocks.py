"""Bounded Sentinel-1 work units: a block of neighbouring tiles x the acquisitions covering it.

DESIGN.md principle 3 (work units that share a source, no chunk shared by two workers) at
region scale (issue 12): a region-period is cut into blocks of at most `block` x `block`
tiles of one UTM lattice (blocks by zone, col // block, row // block), and each block gets
one unit per time bucket holding every S1 layer the run asks for there:

- `s1grd` of a period P: every product of P touching a tile (all passes: their bands share
  one chunk per tile-period, so they must be in the same unit);
- `s1coh`/`s1ifg` of a pair label: the product pairs of that label (from the source's
  pairing policy), per track, and the tiles each track covers fully (a tile seen by two
  tracks with the same label takes the first track in sorted order: one chunk, one pair);
- `s1geom` of a track: the products of that track touching a tile;
- `s1cohs` of a season P (issue 13 item 2): every pair of one track with a GSSIC baseline
  (sar/seasonal.py BASELINES) whose mid-date is in P (dates from 24 days before P to 24
  after), and the tiles those products touch; it shares the `s1grd` bucket of P when asked.

A pair goes to the bucket of the `s1grd` period holding its reference date (its backscatter
then comes from the same resampling), else to a bucket of its own; `s1geom` joins the
block's first bucket. Tiles per unit and the inputs a unit reads are bounded by the block,
whatever the region size or number of dates. Geometry is tested once per footprint (a burst
id, or a product) rather than once per date: the burst-id rule (ESA S1-TN-MDA-52-7445) fixes
a burst's footprint on every repeat pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely

from ..errors import BadInput
from ..periods import Period
from ..s1.pairing import SEASONAL_DT, form_pairs
from ..s1.products import S1Pair, S1Product
from .base import PlanRequest, Target, TileRef, WorkUnit

BLOCK = 8  # tiles per block side: 64 tiles per unit
MAX_TILES = 128
S1_LAYERS = ("s1grd", "s1coh", "s1ifg", "s1geom", "s1cohs", "s1unw")
PAIR_LAYERS = ("s1coh", "s1ifg", "s1unw")  # s1unw: unwrapped per block (s1unw.py)


def track_label(relative_orbit: int, pass_direction: str) -> str:
    """`t108A`: the static period label of a track's geometry."""
    return f"t{relative_orbit:03d}{pass_direction[:1].upper()}"


def block_of(tile_id: str, size: int = BLOCK) -> tuple:
    """The block of a tile id `17N-0089-0745[-sNNNN]`; other ids are blocks of their own."""
    parts = tile_id.split("-")
    try:
        col, row = int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        return ("", tile_id)
    return (parts[0], *parts[3:], col // size, row // size)


@dataclass(frozen=True)
class ProductRecord:
    """One product as a worker needs it: where it is or comes from (picklable, no geometry)."""

    name: str
    track: str
    date: dt.date
    platform: str
    start: str
    stop: str
    path: str | None = None
    url: str | None = None
    size: int | None = None
    md5: str | None = None
    burst_ids: tuple[str, ...] = ()
    polarisations: tuple[str, ...] = ()
    burst: dict | None = field(default=None, hash=False, compare=False)  # ASF burst files
    as_bursts: bool = False  # an SLC frame fetched as its bursts over the unit (ASF source)

    @property
    def pass_direction(self) -> str:
        return "ASCENDING" if self.track.endswith("A") else "DESCENDING"

    @classmethod
    def of(cls, p: S1Product) -> ProductRecord:
        return cls(p.name, track_label(p.relative_orbit, p.pass_direction), p.date, p.platform,
                   p.start.isoformat(), p.stop.isoformat(), p.path, p.url, p.size, p.md5,
                   p.burst_ids, p.polarisations, p.extra.get("burst"),
                   bool(p.extra.get("as_bursts")))


@dataclass(frozen=True)
class PairWork:
    """The product pairs of one label on one track, and the tiles they serve in this unit."""

    label: str
    track: str
    products: tuple[tuple[int, int], ...]  # (reference, secondary) indices into S1Work.products
    tiles: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class S1Work:
    """A block unit's inputs: its products, which touch which tile, and what each layer uses."""

    products: tuple[ProductRecord, ...]
    cover: Mapping[str, tuple[int, ...]]  # tile -> indices of the products touching it
    grd: tuple[tuple[str, tuple[int, ...]], ...]  # s1grd period -> products dated in it
    pairs: tuple[PairWork, ...]
    geom: tuple[tuple[str, tuple[int, ...]], ...]  # track label -> its products, oldest first
    cohs: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()  # season -> its pairs


def unit_work(unit: WorkUnit) -> S1Work:
    """The S1Work a block unit carries (a unit another source planned is a TypeError)."""
    if not isinstance(unit.payload, S1Work):
        raise TypeError(f"unit {unit.key or unit.modality}: not an S1 block unit "
                        f"(payload {type(unit.payload).__name__})")
    return unit.payload


class _Catalogue:
    """Products grouped by footprint (one per burst id, else one per product), indexed once."""

    def __init__(self, products: Sequence[S1Product]) -> None:
        self.products = list(products)
        keys: dict[str, int] = {}
        geoms: list[shapely.Geometry] = []
        self.key_of = np.empty(len(self.products), np.int64)
        for i, p in enumerate(self.products):
            k = p.burst_ids[0] if len(p.burst_ids) == 1 else p.name
            if k not in keys:
                keys[k] = len(geoms)
                geoms.append(p.footprint)
            self.key_of[i] = keys[k]
        self.geoms = geoms
        self.by_key: list[list[int]] = [[] for _ in geoms]
        for i, key in enumerate(self.key_of.tolist()):
            self.by_key[key].append(i)
        self.index = {p.name: i for i, p in enumerate(self.products)}
        self.records = [ProductRecord.of(p) for p in self.products]
        self.dates = [p.date for p in self.products]
        self.tracks = [track_label(p.relative_orbit, p.pass_direction) for p in self.products]

    def keys_touching(self, polys: Sequence[shapely.Geometry]) -> tuple[np.ndarray, np.ndarray]:
        """Per polygon, the footprint keys intersecting it, as CSR (offsets, keys): a region
        has millions of (tile, footprint) pairs, which Python lists would not hold cheaply.
        The few large footprints query a tree of the many small tiles (each footprint is
        prepared once), not the other way round."""
        if not self.geoms or not len(polys):
            return np.zeros(len(polys) + 1, np.int64), np.zeros(0, np.int64)
        tiles = shapely.STRtree(np.asarray(polys, dtype=object))
        ki, ti = tiles.query(np.asarray(self.geoms, dtype=object), predicate="intersects")
        order = np.lexsort((ki, ti))
        offsets = np.searchsorted(ti[order], np.arange(len(polys) + 1))
        return offsets, ki[order]


def plan_blocks(requests: Sequence[PlanRequest], products: Sequence[S1Product],
                pairs: Sequence[S1Pair], block: int = BLOCK) -> list[WorkUnit]:
    """Units for every requested S1 layer: one per (block, time bucket), see the module doc."""
    if block < 1 or block * block > MAX_TILES:
        raise BadInput(f"S1 block must be 1-{int(MAX_TILES ** 0.5)} tiles a side, not {block}")
    want: dict[tuple[str, str], set[str]] = {}
    periods: dict[tuple[str, str], Period] = {}
    refs: dict[str, TileRef] = {}
    shared: dict[int, set[str]] = {}  # requests sharing one tile list share one set
    for r in requests:
        if r.modality.name not in S1_LAYERS:
            raise BadInput(f"{r.modality.name} is not a Sentinel-1 layer")
        key = (r.modality.name, r.period.label)
        ids_ = shared.get(id(r.tiles))
        if ids_ is None:
            ids_ = shared[id(r.tiles)] = {t.id for t in r.tiles}
            for t in r.tiles:
                refs.setdefault(t.id, t)
        want[key] = want[key] | ids_ if key in want else ids_
        periods[key] = r.period
    if not refs or not products:
        return []
    cat = _Catalogue(products)
    ids = sorted(refs)
    offsets, flat = cat.keys_touching([refs[t].polygon for t in ids])
    row = {t: k for k, t in enumerate(ids)}

    def tile_keys(t: str) -> list[int]:
        k = row[t]
        return flat[offsets[k]:offsets[k + 1]].tolist()

    grd_periods = sorted((periods[k] for k in want if k[0] == "s1grd"), key=lambda p: p.start)
    labels = {k[1] for k in want if k[0] in PAIR_LAYERS}
    tracks = sorted({k[1] for k in want if k[0] == "s1geom"})
    pairs_by_key: dict[int, list[tuple[str, int, int]]] = {}  # reference footprint -> pairs
    for q in pairs:
        i, j = cat.index.get(q.reference.name), cat.index.get(q.secondary.name)
        if i is not None and j is not None and q.label in labels:
            pairs_by_key.setdefault(int(cat.key_of[i]), []).append((q.label, i, j))
    cohs_by_key: dict[int, list[tuple[str, int, int]]] = {}  # as pairs_by_key, per season
    for key in sorted(k for k in want if k[0] == "s1cohs"):
        per = periods[key]
        for q in form_pairs(products, "seasonal", max(SEASONAL_DT), (per.start, per.end)):
            i, j = cat.index[q.reference.name], cat.index[q.secondary.name]
            cohs_by_key.setdefault(int(cat.key_of[i]), []).append((per.label, i, j))
    blocks: dict[tuple, list[str]] = {}
    for tid in ids:
        blocks.setdefault(block_of(tid, block), []).append(tid)
    cover_cache: dict[frozenset, shapely.Geometry] = {}
    units = []
    for bkey in sorted(blocks, key=str):
        units.extend(_block_units(bkey, blocks[bkey], refs, tile_keys, cat, want, grd_periods,
                                  pairs_by_key, tracks, cover_cache, cohs_by_key))
    return units


def _block_units(bkey: tuple, tiles: list[str], refs: Mapping[str, TileRef],
                 tile_keys: Callable[[str], list[int]], cat: _Catalogue,
                 want: Mapping[tuple[str, str], set[str]], grd_periods: list[Period],
                 pairs_by_key: Mapping[int, list[tuple[str, int, int]]], tracks: list[str],
                 cover_cache: dict, cohs_by_key: Mapping[int, list[tuple[str, int, int]]]
                 ) -> list[WorkUnit]:
    """The units of one block: one per time bucket (see the module docstring)."""
    per_tile = {t: tile_keys(t) for t in tiles}
    keys = sorted({k for t in tiles for k in per_tile[t]})
    if not keys:
        return []
    kset = set(keys)
    touching = {t: [i for k in per_tile[t] for i in cat.by_key[k]] for t in tiles}
    prods_here = sorted({i for k in keys for i in cat.by_key[k]})
    buckets: dict[str, dict] = {}

    def bucket(name: str) -> dict:
        return buckets.setdefault(name, {"targets": [], "grd": [], "pairs": [], "geom": [],
                                         "cohs": []})

    def touched(t: str, pset: set[int]) -> bool:
        return any(i in pset for i in touching[t])

    # backscatter: every product dated in the period and touching the tile
    for per in grd_periods:
        asked = want[("s1grd", per.label)]
        prods = [i for i in prods_here if per.contains(cat.dates[i])]
        if not prods:
            continue
        pset = set(prods)
        sel = tuple(t for t in tiles if t in asked and touched(t, pset))
        if sel:
            b = bucket(f"grd:{per.label}")
            b["targets"].append(Target("s1grd", per.label, sel))
            b["grd"].append((per.label, prods))
    # pairs: per label, per track, the tiles the product pairs cover fully
    by_label: dict[str, dict[str, list[tuple[int, int]]]] = {}
    for k in keys:
        for label, i, j in pairs_by_key.get(k, ()):
            if int(cat.key_of[j]) in kset:
                by_label.setdefault(label, {}).setdefault(cat.tracks[i], []).append((i, j))
    xy, ring = _corners([refs[t].polygon for t in tiles])
    for label in sorted(by_label):
        layer_tiles = {m: want.get((m, label), set()) for m in PAIR_LAYERS}
        if not any(layer_tiles.values()):
            continue
        by_track = by_label[label]
        taken: set[str] = set()
        works = []
        for track in sorted(by_track):
            region = _pair_region(cat, by_track[track], cover_cache)
            # covered: every vertex of the tile's ring inside (the regions are convex pieces)
            out = ~shapely.contains_xy(region, xy[:, 0], xy[:, 1])
            inside = np.bincount(ring, weights=out, minlength=len(tiles)) == 0
            mine = tuple(t for t, ok in zip(tiles, inside.tolist(), strict=True)
                         if ok and t not in taken and
                         any(t in ts for ts in layer_tiles.values()))
            if mine:
                taken.update(mine)
                works.append((label, track, by_track[track], mine))
        if not works:
            continue
        ref_date = cat.dates[works[0][2][0][0]]
        home = next((f"grd:{p.label}" for p in grd_periods if p.contains(ref_date)),
                    f"pair:{label}")
        b = bucket(home)
        b["pairs"].extend(works)
        for m in PAIR_LAYERS:
            sel = tuple(t for t in tiles if t in taken and t in layer_tiles[m])
            if sel:
                b["targets"].append(Target(m, label, sel))
    # seasonal coherence: per season, the GSSIC pairs and the tiles their products touch
    by_season: dict[str, list[tuple[int, int]]] = {}
    for k in keys:
        for label, i, j in cohs_by_key.get(k, ()):
            if int(cat.key_of[j]) in kset:
                by_season.setdefault(label, []).append((i, j))
    for label in sorted(by_season):
        prs = sorted(by_season[label])
        pset = {i for pr in prs for i in pr}
        sel = tuple(t for t in tiles if t in want[("s1cohs", label)] and touched(t, pset))
        if sel:
            b = bucket(f"grd:{label}" if ("s1grd", label) in want else f"cohs:{label}")
            b["targets"].append(Target("s1cohs", label, sel))
            b["cohs"].append((label, prs))
    # geometry: the block's first bucket, or one of its own
    if tracks:
        of_track: dict[str, list[int]] = {}
        for i in prods_here:
            of_track.setdefault(cat.tracks[i], []).append(i)
        for track in tracks:
            prods = sorted(of_track.get(track, ()),
                           key=lambda i: (cat.dates[i], cat.products[i].name))
            if not prods:
                continue
            asked = want[("s1geom", track)]
            pset = set(prods)
            sel = tuple(t for t in tiles if t in asked and touched(t, pset))
            if sel:
                b = buckets[min(buckets)] if buckets else bucket(f"geom:{track}")
                b["targets"].append(Target("s1geom", track, sel))
                b["geom"].append((track, prods))
    return [_unit(bkey, name, b, cat, touching) for name, b in sorted(buckets.items())
            if b["targets"]]


def _corners(polys: list[shapely.Geometry]) -> tuple[np.ndarray, np.ndarray]:
    """About four vertices per tile ring (its corners for our 16-vertex tile rings), and the
    tile each belongs to: enough to test cover by convex regions, 4x cheaper than all."""
    xy, ring = shapely.get_coordinates(polys, return_index=True)
    n = np.bincount(ring, minlength=len(polys))
    first = np.concatenate([[0], np.cumsum(n)[:-1]])
    pos = np.arange(len(ring)) - first[ring]
    step = np.maximum((n - 1) // 4, 1)[ring]
    keep = (pos % step == 0) & (pos < n[ring] - 1)
    return xy[keep], ring[keep]


def _pair_region(cat: _Catalogue, prs: list[tuple[int, int]], cache: dict) -> shapely.Geometry:
    """Where both dates of some product pair image the ground (cached per footprint pair set:
    burst pairs of one track repeat the same footprints every date)."""
    fkey = frozenset((int(cat.key_of[i]), int(cat.key_of[j])) for i, j in prs)
    region = cache.get(fkey)
    if region is None:
        parts = [cat.geoms[a] if a == b else cat.geoms[a].intersection(cat.geoms[b])
                 for a, b in sorted(fkey)]
        region = parts[0] if len(parts) == 1 else shapely.union_all(parts)
        shapely.prepare(region)
        cache[fkey] = region
    return region


def _unit(bkey: tuple, name: str, b: dict, cat: _Catalogue,
          touching: dict[str, list[int]]) -> WorkUnit:
    """Re-index the bucket's products locally and wrap it as a WorkUnit."""
    used = sorted({i for _, ps in b["grd"] for i in ps} |
                  {i for _, _, prs, _ in b["pairs"] for pr in prs for i in pr} |
                  {i for _, ps in b["geom"] for i in ps} |
                  {i for _, prs in b["cohs"] for pr in prs for i in pr})
    local = {g: k for k, g in enumerate(used)}
    tiles = sorted({t for tg in b["targets"] for t in tg.tiles})
    work = S1Work(
        products=tuple(cat.records[i] for i in used),
        cover={t: tuple(sorted(local[i] for i in touching[t] if i in local)) for t in tiles},
        grd=tuple((lb, tuple(local[i] for i in ps)) for lb, ps in b["grd"]),
        pairs=tuple(PairWork(lb, tr, tuple((local[i], local[j]) for i, j in prs), ts)
                    for lb, tr, prs, ts in b["pairs"]),
        geom=tuple((tr, tuple(local[i] for i in ps)) for tr, ps in b["geom"]),
        cohs=tuple((lb, tuple((local[i], local[j]) for i, j in prs)) for lb, prs in b["cohs"]))
    first, *rest = b["targets"]
    return WorkUnit(first.modality, first.period, first.tiles,
                    key="-".join(str(x) for x in bkey) + f":{name}",
                    items=tuple(p.name for p in work.products), payload=work,
                    more=tuple(rest))
