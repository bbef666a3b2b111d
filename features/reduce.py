"""Adding partial results in a fixed tree, whoever computed them (pure Python, no imports).

The engine's pools (:mod:`service.workers`) and the event sums (:mod:`features.scale`) both add
in this tree, so the floating-point sums do not depend on which worker ran which item. It lives
apart from :mod:`features.scale` so that a pool that only loads files (``svrisk ingest``) does
not import scipy and the feature code with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

SPLIT_EVERY = 8
"""Partial sums added at a time in the reduction tree."""


class TreeReducer:
    """Adds results as they come, in the fixed tree of :func:`tree_reduce`, holding few at a time.

    ``push`` the results in item order, then ``result()``. At most ``split_every`` results
    wait per level of the tree, so memory stays near ``split_every x depth`` partial sums.
    """

    def __init__(self, combine: Callable[[list], object], split_every: int = SPLIT_EVERY):
        if split_every < 2:
            raise ValueError(f"split_every must be >= 2, got {split_every!r}")
        self.combine = combine
        self.split_every = int(split_every)
        self.levels: list[list] = [[]]

    def push(self, value, level: int = 0) -> None:
        while len(self.levels) <= level:
            self.levels.append([])
        self.levels[level].append(value)
        if len(self.levels[level]) == self.split_every:
            group, self.levels[level] = self.levels[level], []
            self.push(self.combine(group), level + 1)

    def result(self):
        level = 0
        while True:
            pending = self.levels[level]
            higher = any(self.levels[level + 1:])
            if not higher and len(pending) <= 1:
                if not pending:
                    raise ValueError("nothing to reduce")
                return pending[0]
            self.levels[level] = []
            if pending:
                self.push(self.combine(pending) if len(pending) > 1 else pending[0], level + 1)
            level += 1


def tree_reduce(values: Sequence, combine: Callable[[list], object], split_every: int = SPLIT_EVERY):
    """``combine`` applied level by level to groups of ``split_every`` neighbours, until one is left.

    The grouping depends only on the number of values, so any engine that adds in this
    tree (:class:`TreeReducer` streams it) gets the same floating-point sums.
    """
    level = list(values)
    if not level:
        raise ValueError("nothing to reduce")
    while len(level) > 1:
        level = [combine(level[i:i + split_every]) if len(level[i:i + split_every]) > 1 else level[i]
                 for i in range(0, len(level), split_every)]
    return level[0]


def serial_map_reduce(func, items, combine, shared=(), split_every: int = SPLIT_EVERY, rows: int | None = None):
    """``tree_reduce([func(item, *shared) for item in items], combine)`` one item at a time, in this process."""
    reducer = TreeReducer(combine, split_every)
    for item in items:
        reducer.push(func(item, *shared))
    return reducer.result()
