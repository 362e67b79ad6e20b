"""Layout names of mini-LIBERO's init states (cheap to import: the LeRobot env config uses it).

- "libero" (default): every task has its own region layout, as every LIBERO task has its own BDDL file:
  a fixed centre per body and a 2 cm x 2 cm box around it (`init_states.REGION_HALF`).
- "wide": every body anywhere on the reachable table; a position-generalisation probe in the spirit of
  LIBERO-PRO / LIBERO-Plus, always reported apart from the main numbers.
"""

from __future__ import annotations

LAYOUTS = ("libero", "wide")
DEFAULT_LAYOUT = "libero"


def check_layout(layout: str) -> str:
    """`layout` if it is one of `LAYOUTS`; ValueError naming the field, the value and the valid ones."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is not a mini-LIBERO layout; valid: {list(LAYOUTS)}")
    return layout
