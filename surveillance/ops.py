"""The few array primitives the detectors need, for MLX and for NumPy.

Detectors are written once against `Ops`; `MlxOps` runs them with MLX
(`mlx.core`, CPU build on Linux, the GPU on Apple silicon) and `NumpyOps`
with plain NumPy, side by side in the benchmark and as a cross-check in the
tests. Ids, seconds and counts are int32, prices, quantities and times int64;
everything that decides an alert is an integer, so both agree exactly.

MLX builds a lazy graph: the detectors build all of theirs first and `eval`
runs them together once; only then do the (small) flagged cells go to NumPy.
Scatters and gathers are the expensive MLX CPU primitives, so the detectors
use as few as they can: dense grids, cumulative sums and shifts instead.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

Array = Any  # an mlx.core.array or a numpy.ndarray
Side = Literal["left", "right"]  # searchsorted: the first or the last fitting place


class NumpyOps:
    name = "numpy"
    xp: Any = np
    int32: Any = np.int32
    int64: Any = np.int64

    def asarray(self, values: np.ndarray) -> Array:
        return values

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def eval(self, *arrays: Array) -> None:
        """NumPy computes eagerly: nothing left to run."""

    def count(self, size: int, index: Array, weights: Array | None = None) -> Array:
        """out[i] = how many times i occurs in index (int32), or the sum of the small
        int32 `weights` where it does."""
        return np.bincount(index, weights=weights, minlength=size).astype(np.int32)

    def scatter_add(self, size: int, index: Array, weights: Array) -> Array:
        """out[index[i]] += weights[i] over a zeroed array of `size` (weights' dtype: the
        caller makes sure the sums fit)."""
        # float64 sums are exact for the quantities summed here (< 2**53)
        return np.bincount(index, weights=weights, minlength=size).astype(weights.dtype)

    def sort(self, keys: Array) -> Array:
        return np.sort(keys)

    def argsort(self, keys: Array) -> Array:
        """Keys are distinct where this is used, so any sort is stable."""
        return np.argsort(keys)

    def suffix_min(self, x: Array) -> Array:
        """out[i] = min(x[i:])."""
        return np.minimum.accumulate(x[::-1])[::-1]

    def searchsorted(self, sorted_keys: Array, values: Array, side: Side) -> Array:
        return np.searchsorted(sorted_keys, values, side=side).astype(np.int32)


class MlxOps:
    name = "mlx"

    def __init__(self) -> None:
        import mlx.core as mx

        self.mx = mx
        self.xp: Any = mx
        self.int32: Any = mx.int32
        self.int64: Any = mx.int64

    def asarray(self, values: np.ndarray) -> Array:
        return self.mx.array(values)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def eval(self, *arrays: Array) -> None:
        self.mx.eval(*arrays)

    def count(self, size: int, index: Array, weights: Array | None = None) -> Array:
        mx = self.mx
        return mx.zeros((size,), dtype=mx.int32).at[index].add(1 if weights is None else weights)

    def scatter_add(self, size: int, index: Array, weights: Array) -> Array:
        mx = self.mx
        return mx.zeros((size,), dtype=weights.dtype).at[index].add(weights)

    def sort(self, keys: Array) -> Array:
        return self.mx.sort(keys)

    def argsort(self, keys: Array) -> Array:
        return self.mx.argsort(keys)

    def suffix_min(self, x: Array) -> Array:
        return self.mx.cummin(x, reverse=True)

    def searchsorted(self, sorted_keys: Array, values: Array, side: Side) -> Array:
        return self.mx.searchsorted(sorted_keys, values, side=side).astype(self.mx.int32)


def make_ops(name: str) -> NumpyOps | MlxOps:
    if name == "numpy":
        return NumpyOps()
    if name == "mlx":
        return MlxOps()
    raise ValueError(f"unknown surveillance backend {name!r} (mlx or numpy)")
