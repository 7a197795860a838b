"""Source plug-ins, looked up by name so that importing one never loads the others' clients."""

from __future__ import annotations

import importlib

from ..errors import BadInput
from .base import Source, TileResult, WorkUnit

#: name -> "module:Class"; each class takes keyword options only (picklable, lazy clients).
SOURCES: dict[str, str] = {
    "local": "m3leo_tiles.sources.local:LocalRasterSource",
    "earthengine": "m3leo_tiles.sources.earthengine:EarthEngineSource",
    "archive": "m3leo_tiles.sources.s1:S1ArchiveSource",
    "asf": "m3leo_tiles.sources.asf:AsfSource",
}


def register_source(name: str, target: str) -> None:
    SOURCES[name] = target


def get_source(name: str, **options) -> Source:
    """Instantiate a source by name with its options (e.g. root=..., project=...)."""
    try:
        target = SOURCES[name]
    except KeyError:
        raise BadInput(f"unknown source {name!r}; known: {', '.join(sorted(SOURCES))}") from None
    modname, clsname = target.split(":")
    try:
        cls = getattr(importlib.import_module(modname), clsname)
    except (ImportError, AttributeError) as e:
        raise BadInput(f"source {name!r} is not available in this installation: {e}") from None
    return cls(**options)


__all__ = ["SOURCES", "Source", "TileResult", "WorkUnit", "get_source", "register_source"]
