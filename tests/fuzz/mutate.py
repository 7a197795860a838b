"""Hypothesis strategies that damage real-format inputs the way the world does.

XML (SAFE manifests, annotation/calibration/noise, EOF): elements deleted, emptied or
duplicated, texts and attributes swapped for wrong types (words, NaN, inf, huge numbers,
impossible dates), then, sometimes, the bytes truncated or flipped. JSON (STAC, CMR, AOI):
fields removed, retyped (null, lists, numbers for strings...) or filled with NaN and huge
numbers. Mutations are aimed: most land on the elements the parser actually reads (`tags`),
the rest anywhere, so a small example budget still reaches the code under test.

`run_fuzz` runs one property with a fixed, derandomised budget in `make test` (deterministic
CI) and a ten times larger random one under `-m slow` / M3LEO_SLOW=1.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import timedelta

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

#: values a wrong file puts where a number, a date or a name should be
BAD_TEXT = ["", " ", "NaN", "nan", "inf", "-inf", "-1", "0", "-0", "1e308", "-1e308",
            "9" * 40, "abc", "1,2", "1 2 3", "2025-13-45T25:61:61.000000", "0000-00-00T00:00:00",
            "UTC=2025-02-30T00:00:00", "1.5", "true", "<", "&", "\u00e9\u00df\u4e2d",
            "2025-04-06T02:20:10.390805Z"]
BAD_JSON = [None, "", "NaN", "abc", -1, 0, 1e308, -1e308, float("nan"), float("inf"), 10**40,
            [], {}, [None], {"a": 1}, True, "2025-13-45T25:61:61Z", [[0, 0]], "9" * 40]



class Blob(bytes):
    """Bytes that print short in hypothesis' reports (a seed is hundreds of kB)."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes, head {bytes(self[:60])!r}>"


def run_fuzz(strategy: st.SearchStrategy, check: Callable[[object], None], examples: int,
             deep: bool = False) -> None:
    """Run `check` on `examples` draws (ten times more, random, when `deep`)."""
    # fast runs skip shrinking: a failure is reported at once, with its reproduce blob
    phases = list(Phase) if deep else [p for p in Phase if p != Phase.shrink]
    s = settings(max_examples=examples * (10 if deep else 1), derandomize=not deep, phases=phases,
                 deadline=timedelta(seconds=30), database=None, print_blob=True,
                 suppress_health_check=list(HealthCheck))

    @s
    @given(strategy)
    def prop(x):
        check(x)

    prop()


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@st.composite
def mutated_xml(draw, seed: bytes, tags: Sequence[str] = (), max_ops: int = 3) -> bytes:
    """`seed` with one to `max_ops` structural/text mutations, maybe then byte damage."""
    root = ET.fromstring(seed)
    for _ in range(draw(st.integers(1, max_ops))):
        elems = list(root.iter())
        parent = {c: p for p in elems for c in p}
        aimed = [e for e in elems if local(e.tag) in tags]
        pool = aimed if aimed and draw(st.integers(0, 9)) < 8 else elems
        el = pool[draw(st.integers(0, len(pool) - 1))]
        op = draw(st.sampled_from(["text", "text", "text", "delete", "empty", "dup", "attr"]))
        if op == "text":
            el.text = draw(st.sampled_from(BAD_TEXT) | st.text(max_size=12))
        elif op == "delete" and el in parent:
            parent[el].remove(el)
        elif op == "empty":
            for c in list(el):
                el.remove(c)
            el.text = None
        elif op == "dup" and el in parent:
            p = parent[el]
            p.insert(list(p).index(el), copy.deepcopy(el))
        elif op == "attr":
            names = sorted(el.attrib) or ["count"]
            name = names[draw(st.integers(0, len(names) - 1))]
            if draw(st.booleans()) and name in el.attrib:
                del el.attrib[name]
            else:
                el.set(name, draw(st.sampled_from(BAD_TEXT)))
    out = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)
    return Blob(draw(byte_damage(out)))


@st.composite
def byte_damage(draw, data: bytes) -> bytes:
    """Mostly (5 in 8) untouched; else truncated, a byte flipped or a slice cut out."""
    op = draw(st.sampled_from(["none"] * 5 + ["truncate", "flip", "cut"]))
    if op == "none" or not data:
        return Blob(data)
    i = draw(st.integers(0, len(data) - 1))
    if op == "truncate":
        return Blob(data[:i])
    if op == "flip":
        return Blob(data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:])
    j = draw(st.integers(i, min(len(data), i + 4096)))
    return Blob(data[:i] + data[j:])


def _paths(doc: object, prefix: tuple = ()) -> list[tuple]:
    """Every key/index path inside a JSON document."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append(prefix + (i,))
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def mutated_json(draw, seed: object, keys: Sequence[str] = (), max_ops: int = 3) -> object:
    """A deep copy of the JSON value `seed` with fields removed, retyped or emptied."""
    doc = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, max_ops))):
        paths = _paths(doc)
        if not paths:
            break
        aimed = [p for p in paths if isinstance(p[-1], str) and p[-1] in keys]
        pool = aimed if aimed and draw(st.integers(0, 9)) < 7 else paths
        path = pool[draw(st.integers(0, len(pool) - 1))]
        holder = doc
        for k in path[:-1]:
            holder = holder[k]
        if draw(st.integers(0, 3)) == 0:
            del holder[path[-1]]
        else:
            # a copy: BAD_JSON's lists and dicts must not be mutated by a later op, or the
            # next example draws from changed values (hypothesis: FlakyStrategyDefinition)
            holder[path[-1]] = copy.deepcopy(draw(st.sampled_from(BAD_JSON)
                                                  | st.text(max_size=8) | st.integers()
                                                  | st.floats()))
    return doc


@st.composite
def mutated_json_bytes(draw, seed: object, keys: Sequence[str] = ()) -> bytes:
    """The mutated document serialised (NaN/Infinity as Python writes them), maybe damaged."""
    text = json.dumps(draw(mutated_json(seed, keys)), allow_nan=True).encode()
    return draw(byte_damage(text))
