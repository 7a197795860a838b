"""The part of Earth Engine's expression evaluator the recipes use, for the loopback server.

The `ee` client serialises an expression as a graph (`{"result": ref, "values": {ref: node}}`,
nodes `constantValue`, `arrayValue`, `dictionaryValue`, `valueReference`,
`functionInvocationValue` {functionName, arguments}, `functionDefinitionValue` {argumentNames,
body} and `argumentReference` inside a mapped function). `evaluate` walks it on images the
server holds (`Asset`), every pixel on the request grid, with Earth Engine's semantics as its
documentation gives them: band selection by name, band-wise arithmetic with one-band
broadcast and the intersection of masks, `updateMask`/`unmask`, collection filters (bounds,
date range, property equality, list membership), `mosaic` (last unmasked image on top),
per-pixel `median`/`count`/`max` over unmasked images (a reduction over no image has no
bands, which is why the recipes merge a masked stand-in), and the casts. A function it does
not know is a 400 naming it, never a made-up answer.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class GraphError(Exception):
    """What Earth Engine answers with 400 INVALID_ARGUMENT."""


@dataclass(frozen=True)
class Band:
    values: np.ndarray  # float64, (h, w)
    mask: np.ndarray  # bool, (h, w): True where the pixel is valid
    dtype: str  # the numpy type computePixels writes it as


@dataclass(frozen=True)
class Img:
    bands: dict[str, Band]
    props: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Asset:
    """An image the server holds: band arrays on the request grid (a masked array's mask is
    the image mask; a scalar fills the grid; a function of the grid's (h, w) gives one for
    any grid), its properties, footprint and date."""

    bands: dict[str, Any]
    props: dict[str, Any] = field(default_factory=dict)
    bbox: tuple[float, float, float, float] = (-180.0, -90.0, 180.0, 90.0)  # lon/lat
    date: str | None = None  # system:time_start
    dtype: str = "<f4"
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def image(self, shape: tuple[int, int]) -> Img:
        """The image on a grid of `shape` (converted once per shape: bands are not to be
        changed once a request has read them)."""
        if shape not in self._cache:
            self._cache[shape] = self._convert(shape)
        return Img(self._cache[shape].bands, dict(self._cache[shape].props))

    def _convert(self, shape: tuple[int, int]) -> Img:
        bands = {}
        for name, a in self.bands.items():
            a = a(shape) if callable(a) else a
            if np.ndim(a) == 0:
                a = np.ma.masked_array(np.full(shape, np.ma.getdata(a), np.float64),
                                       np.full(shape, np.ma.getmask(a) is np.True_))
            if np.shape(a) != shape:
                raise GraphError(f"loopback asset band {name}: {np.shape(a)}, grid is {shape}")
            valid = ~np.ma.getmaskarray(a) if np.ma.isMaskedArray(a) else np.ones(shape, bool)
            bands[name] = Band(np.asarray(np.ma.getdata(a), np.float64), valid, self.dtype)
        props = dict(self.props)
        if self.date:
            d = dt.datetime.fromisoformat(self.date).replace(tzinfo=dt.UTC)
            props["system:time_start"] = int(d.timestamp() * 1000)
        return Img(bands, props | {"_bbox": self.bbox})


@dataclass(frozen=True)
class Closure:
    args: tuple[str, ...]
    body: str


# ---- images ---------------------------------------------------------------------------------
def _constant(value: Any, shape: tuple[int, int]) -> Img:
    vals = value if isinstance(value, list) else [value]
    names = ["constant"] if not isinstance(value, list) else [f"constant_{i}"
                                                              for i in range(len(vals))]
    return Img({n: Band(np.full(shape, float(v)), np.ones(shape, bool),
                        "<i4" if float(v).is_integer() else "<f8")
                for n, v in zip(names, vals, strict=True)})


def _as_image(x: Any, shape: tuple[int, int]) -> Img:
    return x if isinstance(x, Img) else _constant(x, shape)


def _pairs(a: Img, b: Img, fn: str) -> list[tuple[str, Band, Band]]:
    """Band pairs of a binary operation: equal counts pair up, one band meets every band."""
    na, nb = list(a.bands), list(b.bands)
    if len(na) == len(nb):
        return [(x, a.bands[x], b.bands[y]) for x, y in zip(na, nb, strict=True)]
    if len(nb) == 1:
        return [(x, a.bands[x], b.bands[nb[0]]) for x in na]
    if len(na) == 1:
        return [(y, a.bands[na[0]], b.bands[y]) for y in nb]
    raise GraphError(f"{fn}: images must have the same number of bands or one band, "
                     f"got {len(na)} and {len(nb)}")


def _binary(op: Callable[[np.ndarray, np.ndarray], np.ndarray], out: str | None):
    def f(image1: Any, image2: Any, *, _shape: tuple[int, int], _fn: str) -> Img:
        a, b = _as_image(image1, _shape), _as_image(image2, _shape)
        with np.errstate(all="ignore"):
            return Img({n: Band(op(x.values, y.values).astype(np.float64), x.mask & y.mask,
                                out or str(np.result_type(x.dtype, y.dtype)))
                        for n, x, y in _pairs(a, b, _fn)}, a.props)
    return f


def _unary(op: Callable[[np.ndarray], np.ndarray], out: str | None = None):
    def f(value: Img, **_: Any) -> Img:
        with np.errstate(all="ignore"):
            return Img({n: Band(op(b.values), b.mask, out or b.dtype)
                        for n, b in value.bands.items()}, value.props)
    return f


def _cast(lo: float | None, hi: float | None, dtype: str):
    """Integer casts clamp to the type's range and truncate; float32 rounds."""
    def op(v: np.ndarray) -> np.ndarray:
        if lo is None:
            return v.astype(np.float32).astype(np.float64)
        return np.trunc(np.clip(np.nan_to_num(v), lo, hi))
    return _unary(op, dtype)


def _select(input: Img, bandSelectors: list, newNames: list | None = None, **_: Any) -> Img:
    out = {}
    for i, sel in enumerate(bandSelectors):
        name = list(input.bands)[sel] if isinstance(sel, int) else sel
        if name not in input.bands:
            raise GraphError(f"Image.select: Pattern '{sel}' did not match any bands. "
                             f"Available bands: {list(input.bands)}")
        out[newNames[i] if newNames else name] = input.bands[name]
    return Img(out, input.props)


def _rename(input: Img, names: list[str], **_: Any) -> Img:
    if len(names) != len(input.bands):
        raise GraphError(f"Image.rename: Can't rename {len(input.bands)} bands to "
                         f"{len(names)} names ({names}).")
    return Img(dict(zip(names, input.bands.values(), strict=True)), input.props)


def _add_bands(dstImg: Img, srcImg: Img, names: list | None = None, overwrite: bool = False,
               **_: Any) -> Img:
    src = _select(srcImg, names) if names else srcImg
    dup = set(src.bands) & set(dstImg.bands)
    if dup and not overwrite:
        raise GraphError(f"Image.addBands: Duplicate band names: {sorted(dup)}")
    return Img({**dstImg.bands, **src.bands}, dstImg.props)


def _update_mask(image: Img, mask: Any, *, _shape: tuple[int, int], **_: Any) -> Img:
    m = _as_image(mask, _shape)
    return Img({n: Band(x.values, x.mask & y.mask & (y.values != 0), x.dtype)
                for n, x, y in _pairs(image, m, "Image.updateMask")}, image.props)


def _unmask(input: Img, value: Any = 0, sameFootprint: bool = True, *, _shape: tuple[int, int],
            **_: Any) -> Img:
    fill = _as_image(value, _shape)
    return Img({n: Band(np.where(x.mask, x.values, y.values), x.mask | y.mask, x.dtype)
                for n, x, y in _pairs(input, fill, "Image.unmask")}, input.props)


# ---- collections ----------------------------------------------------------------------------
def _bands_of(col: list[Img], fn: str) -> list[str]:
    if not col:
        return []  # Earth Engine: a composite of no image has no bands
    names = list(col[0].bands)
    for img in col[1:]:
        if list(img.bands) != names:
            raise GraphError(f"{fn}: images with different bands: {names} and {list(img.bands)}")
    return names


def _mosaic(collection: list[Img], **_: Any) -> Img:
    out = {}
    for n in _bands_of(collection, "ImageCollection.mosaic"):
        v, m = np.zeros_like(collection[0].bands[n].values), np.zeros_like(
            collection[0].bands[n].mask)
        for img in collection:  # the last image in the collection is on top
            b = img.bands[n]
            v, m = np.where(b.mask, b.values, v), m | b.mask
        dtype = str(np.result_type(*[img.bands[n].dtype for img in collection]))
        out[n] = Band(v, m, dtype)
    return Img(out)


def _reducer(kind: str):
    def f(collection: list[Img], **_: Any) -> Img:
        out = {}
        for n in _bands_of(collection, f"reduce.{kind}"):
            v = np.stack([img.bands[n].values for img in collection])
            m = np.stack([img.bands[n].mask for img in collection])
            count = m.sum(axis=0)
            x = np.where(m, v, np.nan)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: masked
                if kind == "count":
                    out[n] = Band(count.astype(np.float64), count > 0, "<i4")
                elif kind == "median":  # of the unmasked values (a mean of the middle two)
                    srt = np.sort(x, axis=0)  # NaN (masked) last
                    k = np.maximum(count, 1)[None]
                    mid = (np.take_along_axis(srt, (k - 1) // 2, 0)
                           + np.take_along_axis(srt, k // 2, 0))[0] / 2
                    out[n] = Band(np.nan_to_num(mid), count > 0, "<f8")
                else:
                    dtype = str(np.result_type(*[img.bands[n].dtype for img in collection]))
                    out[n] = Band(np.nan_to_num(np.nanmax(x, axis=0)), count > 0, dtype)
        return Img(out)
    return f


def _filter(collection: list[Img], filter: Callable[[Img], bool], **_: Any) -> list[Img]:
    return [img for img in collection if filter(img)]


def _intersects(leftField: str, rightValue: tuple, **_: Any) -> Callable[[Img], bool]:
    x0, y0, x1, y1 = rightValue

    def keep(img: Img) -> bool:
        a0, b0, a1, b1 = img.props.get("_bbox", (-180.0, -90.0, 180.0, 90.0))
        return a0 < x1 and x0 < a1 and b0 < y1 and y0 < b1
    return keep


def _ms(date: str | int) -> int:
    """A date (ISO text, or already milliseconds since the epoch) in milliseconds."""
    if isinstance(date, int | float):
        return int(date)
    return int(dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC).timestamp() * 1000)


_UNIT_MS = {"second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000,
            "week": 7 * 86_400_000}
_JODA = {"YYYY-MM-dd": "%Y-%m-%d", "YYYY-MM-dd'T'HH:mm:ss": "%Y-%m-%dT%H:%M:%S"}


def _date_format(date: int, format: str | None = None, **_: Any) -> str:
    if (format or "YYYY-MM-dd'T'HH:mm:ss") not in _JODA:
        raise GraphError(f"loopback Date.format does not know the pattern {format!r}")
    t = dt.datetime.fromtimestamp(date / 1000, dt.UTC)
    return t.strftime(_JODA[format or "YYYY-MM-dd'T'HH:mm:ss"])


def _date_range_contains(leftValue: tuple[int, int], rightField: str,
                         **_: Any) -> Callable[[Img], bool]:
    start, end = leftValue
    return lambda img: rightField in img.props and start <= img.props[rightField] < end


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "Image.constant": lambda value, *, _shape, **_: _constant(value, _shape),
    "Image.select": _select,
    "Image.rename": _rename,
    "Image.addBands": _add_bands,
    "Image.updateMask": _update_mask,
    "Image.unmask": _unmask,
    "Image.gt": _binary(np.greater, "|u1"),
    "Image.eq": _binary(np.equal, "|u1"),
    "Image.or": _binary(lambda a, b: (a != 0) | (b != 0), "|u1"),
    "Image.and": _binary(lambda a, b: (a != 0) & (b != 0), "|u1"),
    "Image.add": _binary(np.add, "<f8"),
    "Image.subtract": _binary(np.subtract, "<f8"),
    "Image.multiply": _binary(np.multiply, "<f8"),
    "Image.divide": _binary(np.divide, "<f8"),
    "Image.max": _binary(np.maximum, None),
    "Image.log10": _unary(np.log10, "<f8"),
    "Image.not": _unary(lambda v: (v == 0).astype(np.float64), "|u1"),
    "Image.round": _unary(lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5)),  # half away
    "Image.toFloat": _cast(None, None, "<f4"),
    "Image.toUint8": _cast(0, 255, "|u1"),
    "Image.toUint16": _cast(0, 65535, "<u2"),
    "Image.resample": lambda image, **_: image,  # the held images are on the grid already
    "ImageCollection.fromImages": lambda images, **_: list(images),
    "ImageCollection.merge": lambda collection1, collection2, **_: collection1 + collection2,
    "ImageCollection.mosaic": _mosaic,
    "reduce.median": _reducer("median"),
    "reduce.count": _reducer("count"),
    "reduce.max": _reducer("max"),
    "Collection.filter": _filter,
    "Collection.size": lambda collection, **_: len(collection),
    "Filter.intersects": _intersects,
    "Filter.dateRangeContains": _date_range_contains,
    "Filter.equals": lambda leftField, rightValue, **_: (
        lambda img: img.props.get(leftField) == rightValue),
    "Filter.listContains": lambda leftField, rightValue, **_: (
        lambda img: rightValue in img.props.get(leftField, ())),
    "DateRange": lambda start, end=None, **_: (_ms(start), _ms(end)),
    "Date": lambda value, **_: _ms(value),
    "Date.millis": lambda date, **_: date,
    "Date.advance": lambda date, delta, unit, **_: date + int(delta * _UNIT_MS[unit]),
    "Date.format": _date_format,
    "List.distinct": lambda list, **_: [*dict.fromkeys(list)],
    "AggregateFeatureCollection.array": lambda collection, property, **_: [
        img.props[property] for img in collection if property in img.props],
    "Element.set": lambda object, key, value, **_: Img(object.bands, {**object.props,
                                                                      key: value}),
    "Feature": lambda geometry, metadata=None, **_: geometry,
    "GeometryConstructors.Rectangle": lambda coordinates, **_: tuple(coordinates),
    "Projection": lambda crs, **_: crs,
}


class Graph:
    """One serialised expression evaluated on the held assets at a grid's shape."""

    def __init__(self, expr: dict, assets: dict[str, Any], shape: tuple[int, int]):
        self.values, self.assets, self.shape = expr["values"], assets, shape
        self.result = expr["result"]
        self.memo: dict[str, Any] = {}  # values that read no function argument, once each
        self._free: dict[str, bool] = {}

    def evaluate(self) -> Any:
        return self.node(self.values[self.result], {})

    def node(self, n: dict, env: dict[str, Any]) -> Any:
        if "constantValue" in n:
            return n["constantValue"]
        if "valueReference" in n:
            ref = n["valueReference"]
            if self.free(ref):  # reads a mapped function's argument: evaluated per call
                return self.node(self.values[ref], env)
            if ref not in self.memo:
                self.memo[ref] = self.node(self.values[ref], {})
            return self.memo[ref]
        if "argumentReference" in n:
            return env[n["argumentReference"]]
        if "arrayValue" in n:
            return [self.node(v, env) for v in n["arrayValue"].get("values", [])]
        if "dictionaryValue" in n:
            return {k: self.node(v, env) for k, v in n["dictionaryValue"]["values"].items()}
        if "functionDefinitionValue" in n:
            d = n["functionDefinitionValue"]
            return Closure(tuple(d["argumentNames"]), d["body"])
        if "functionInvocationValue" in n:
            call = n["functionInvocationValue"]
            args = {k: self.node(v, env) for k, v in call.get("arguments", {}).items()}
            return self.invoke(call["functionName"], args, env)
        if "nullValue" in n:
            return None
        raise GraphError(f"loopback: unknown value node {sorted(n)}")

    def free(self, ref: str) -> bool:
        """Whether value `ref` reads an argument of a mapped function (then it cannot be
        evaluated once for all calls)."""
        if ref not in self._free:
            self._free[ref] = False  # (a graph has no cycles; this only ends recursion)
            text = json.dumps(self.values[ref])
            refs = re.findall(r'"(?:valueReference|body)": "([^"]+)"', text)
            self._free[ref] = '"argumentReference"' in text or any(self.free(r) for r in refs)
        return self._free[ref]

    def call(self, fn: Closure, *args: Any) -> Any:
        return self.node(self.values[fn.body], dict(zip(fn.args, args, strict=True)))

    def invoke(self, name: str, args: dict[str, Any], env: dict[str, Any]) -> Any:
        if name == "Collection.map":
            return [self.call(args["baseAlgorithm"], img) for img in args["collection"]]
        if name == "List.map":
            out = [self.call(args["baseAlgorithm"], x) for x in args["list"]]
            return [x for x in out if x is not None] if args.get("dropNulls") else out
        if name == "ImageCollection.load":
            if args["id"] not in self.assets:
                raise GraphError(f"ImageCollection.load: ImageCollection asset '{args['id']}' "
                                 "not found (does not exist or caller does not have access).")
            return [a.image(self.shape) for a in self.assets[args["id"]]]
        if name == "Image.load":
            held = self.assets.get(args["id"])
            if not isinstance(held, Asset):
                raise GraphError(f"Image.load: Image asset '{args['id']}' not found.")
            return held.image(self.shape)
        if name == "Collection.first":
            if not args["collection"]:
                raise GraphError("Collection.first: Empty collection.")
            return args["collection"][0]
        fn = FUNCTIONS.get(name)
        if fn is None:
            raise GraphError(f"loopback Earth Engine does not evaluate {name}")
        return fn(**args, _shape=self.shape, _fn=name)


def compute_pixels(expr: dict, assets: dict[str, Any], shape: tuple[int, int],
                   band_ids: list[str] | None) -> np.ndarray:
    """computePixels' NPY array: one field per band in the band's own type, 0 where masked."""
    img = Graph(expr, assets, shape).evaluate()
    if not isinstance(img, Img):
        raise GraphError(f"computePixels: the expression is not an image: {type(img).__name__}")
    if band_ids:
        img = _select(img, band_ids)
    arr = np.zeros(shape, dtype=[(n, b.dtype) for n, b in img.bands.items()])
    for n, b in img.bands.items():
        arr[n] = np.where(b.mask, b.values, 0)
    return arr


__all__ = ["Asset", "Band", "GraphError", "Img", "compute_pixels"]
