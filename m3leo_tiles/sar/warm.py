"""The processor's Numba kernels compiled before a run hands out units, not inside them.

Every kernel is `cache=True`: compiled code lands next to the sources (`__pycache__`) or, where
the install is read-only, in Numba's per-user cache (`NUMBA_CACHE_DIR` picks another place),
and a later process only loads it (~0.1 s a kernel). What is left is the first process after
an install or an upgrade: it would compile (~1 min on 2 cores) inside its first S1 unit, in
every worker at once. `warm()` compiles them ahead, by the exact signatures the processor
calls them with (tests/sar/test_warm.py runs the processor and checks that it asked for
nothing else), so the S1 sources call it from `check()`, in the coordinator before any unit.
`cold()` answers cheaply (Numba's own index files) whether there is anything to do.
"""

from __future__ import annotations

import importlib
from typing import Any

#: kernel ("module:function", under m3leo_tiles.sar) -> the one signature the processor uses
#: (the pair processor's, the pread widening of plain SLC files and s1cohs' decay fit)
SIGNATURES: dict[str, str] = {
    "orbit:_eval": "(float64[::1], float64[::1], float64[:, :, ::1], float64[::1])",
    "geocode:_zero_doppler": "(float64[::1], float64[::1], float64[:, :, ::1], "
                             "float64[:, ::1], float64[::1], float64, int64)",
    "radargrid:_pick_bursts": "(float64[::1], float64[::1], float64, float64, float64, "
                              "float64, float64[::1], float64[::1], float64[::1], float64, "
                              "float64, int64, boolean, int8[::1], float64[::1], int8[::1], "
                              "int16[::1], float64[::1], float64[::1], float64[::1])",
    "radargrid:_interp_nodes": "(float64[:, :, ::1], float64[:, :, ::1], int64[::1], "
                               "float64[::1], int64[::1], float64[::1], float64[::1], "
                               "float64[:, ::1], float64[:, ::1], float64[:, ::1])",
    "tops:deramp": "(complex64[:, :, ::1], int64, int64, int64, float64, float64, float64, "
                   "float64, float64, float64[::1], float64, float64[::1], float64)",
    "kernels:_interp_complex": "(float32[:, :, ::1], int64, int64, float64[::1], float64[::1], "
                               "float64[::1], int64[::1], complex64[:, ::1], int64, float64, "
                               "float64, float64, float64, float64, float64[::1], float64, "
                               "float64[::1], float64, float64, float32[:, ::1], "
                               "float32[:, ::1])",
    "kernels:span_at": "(float64[::1], float64[::1], int64[::1])",
    "kernels:interp_bilinear": "(float32[:, ::1], float64, float64, float64[::1], "
                               "float64[::1], int64[::1], float32[::1])",
    "radiometry:sigma0_box": "(complex64[:, ::1], float64[:, ::1], int64[::1], float64[::1], "
                             "float64[:, ::1], int64[::1], float64[::1], float64[::1], int64, "
                             "float32[:, ::1])",
    "product:_pread_widen": "(int64, int64, int64, float32[:, ::1])",
    "interferometry:_block_pair": "(complex64[:, ::1], complex64[:, ::1], int64, int64, "
                                  "float64)",
    # s1cohs: the decay fit of seasonal coherence
    "seasonal:_fit_decay": "(float64[::1], float64[:, ::1], int64, float64, float64, int64, "
                           "float64[:, ::1])",
}


def _dispatcher(name: str) -> Any:
    mod, fn = name.split(":")
    return getattr(importlib.import_module(f"m3leo_tiles.sar.{mod}"), fn)


def cold() -> list[str]:
    """Kernels whose signature has no compiled code on disk for this source and machine
    (Numba's index: empty when missing, or stale after the source changed)."""
    from numba.core.sigutils import normalize_signature

    out = []
    for name, sig in SIGNATURES.items():
        try:
            index = _dispatcher(name)._cache._cache_file._load_index()
        except AttributeError:  # Numba's private cache API moved: let compile() decide
            out.append(name)
            continue
        args = normalize_signature(sig)[0]
        if not any(key[0] == args for key in index):
            out.append(name)
    return out


def warm() -> list[str]:
    """Compile what `cold()` names (each kernel loads or compiles its one signature);
    returns what was cold."""
    from numba.core.sigutils import normalize_signature

    todo = cold()
    for name in todo:
        # by the tuple of types, as a call compiles: the disk cache is keyed by what compile()
        # is given, and a string's entry would never be found by a call
        _dispatcher(name).compile(normalize_signature(SIGNATURES[name])[0])
    return todo


__all__ = ["SIGNATURES", "cold", "warm"]
