"""The store's tile table: its conversions live with the tile value in `grid.tileref`.

Re-exported here for code that reaches them through the store.
"""

from __future__ import annotations

from ..grid.tileref import refs_from_table as refs_from_table
from ..grid.tileref import table_from_grid as table_from_grid
from ..grid.tiles import BASE_PX as BASE_PX

__all__ = ["BASE_PX", "refs_from_table", "table_from_grid"]
