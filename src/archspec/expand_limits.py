"""What every part of the expander shares: its budgets, and how a recovering expansion marks what an
error left unknown (`archspec.expand.expand_recovering`)."""

from __future__ import annotations

MAX_NODES = 30_000  # the largest published CNNs have a few thousand; 30,000 compile in well under 1 s
# The expansion's work, not only its layers, is bounded: nested repeats over `identity` or macros that
# call macros twice per level make no layers but could take minutes. A line visited costs 1, a macro
# call CALL_COST (binding its arguments and opening its scope take ~25 times a line's time). About 0.35 s
# of work at most; the largest templates use a few thousand.
MAX_WORK = 250_000
CALL_COST = 25

# In a graph expanded with recovery, the input of a layer whose input is unknown: the output of a
# statement that failed (or was not parsed), unless that statement could not change its input's shape.
UNKNOWN = -1


class Unknown(Exception):
    """Raised, while recovering, where an expansion needs what an earlier error left unknown (the
    stream's `channels` after a failed line): the statement's output is unknown too, with no error
    of its own."""
