"""Validate STAC JSON with pystac against the official schemas in `schemas/`, offline.

pystac's validator fetches every schema it has not cached; here the cache is filled from the
files kept in the repository (see schemas/PROVENANCE.md) and the allow-list is empty, so a
schema that is not kept here is an error, never a download.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SPEC = "https://schemas.stacspec.org/v1.1.0"
EXTENSIONS = {
    "https://stac-extensions.github.io/datacube/v2.2.0/schema.json": "datacube/v2.2.0",
    "https://stac-extensions.github.io/scientific/v1.0.0/schema.json": "scientific/v1.0.0",
    "https://stac-extensions.github.io/xarray-assets/v1.0.0/schema.json": "xarray-assets/v1.0.0",
}
ITEM_PARTS = ("item", "bands", "basics", "common", "data-values", "datetime", "instrument",
              "licensing", "provider")


def _read(path: str) -> dict[str, Any]:
    root = resources.files("m3leo_tiles.stac") / "schemas"
    return dict(json.loads((root / path).read_text()))


def schema_cache() -> dict[str, dict[str, Any]]:
    """Canonical URI -> schema, for every schema kept in the repository."""
    cache = {f"{SPEC}/{k}-spec/json-schema/{k}.json": _read(f"stac-spec/v1.1.0/{k}.json")
             for k in ("catalog", "collection")}
    cache.update({f"{SPEC}/item-spec/json-schema/{k}.json": _read(f"stac-spec/v1.1.0/{k}.json")
                  for k in ITEM_PARTS})
    cache.update({uri: _read(f"{folder}/schema.json") for uri, folder in EXTENSIONS.items()})
    return cache


def validate(stac: dict[str, Any]) -> list[str]:
    """Validate a STAC object (and its extensions); returns the schema URIs it was checked
    against. Raises pystac's STACValidationError with the best-matching error."""
    import pystac
    from pystac.validation import validate_dict
    from pystac.validation.stac_validator import JsonSchemaSTACValidator

    validator = JsonSchemaSTACValidator(allow_list=[])
    validator.schema_cache = schema_cache()
    return list(validate_dict(stac, stac_version=pystac.get_stac_version(),
                              validator=validator))


__all__ = ["EXTENSIONS", "schema_cache", "validate"]
