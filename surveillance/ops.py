"""The few array primitives the detectors need, for MLX and for NumPy.

Detectors are written once against `Ops`; `MlxOps` runs them with MLX
(`mlx.core`, CPU build on Linux, the GPU on Apple silicon) and `NumpyOps`
with plain NumPy, side by side in the benchmark and as a cross-check in the
tests. Everything that decides an alert is int64, so both agree exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any  # an mlx.core.array or a numpy.ndarray


class NumpyOps:
    name = "numpy"
    xp: Any = np
    int64: Any = np.int64

    def asarray(self, values: np.ndarray) -> Array:
        return values

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def scatter_add(self, size: int, index: Array, weights: Array) -> Array:
        """out[index[i]] += weights[i] over a zeroed array of `size`."""
        # float64 sums are exact for the counts and quantities summed here (< 2**53)
        return np.bincount(index, weights=weights, minlength=size).astype(np.int64)

    def count(self, size: int, index: Array) -> Array:
        """out[i] = how many times i occurs in index."""
        return np.bincount(index, minlength=size)

    def nonzero(self, mask: Array) -> Array:
        return np.flatnonzero(mask)

    def unique_inverse(self, keys: Array) -> tuple[Array, Array]:
        uniq, inverse = np.unique(keys, return_inverse=True)
        return uniq, inverse.astype(np.int64)

    def searchsorted(self, sorted_keys: Array, values: Array, side: str) -> Array:
        return np.searchsorted(sorted_keys, values, side=side).astype(np.int64)

    def argsort(self, keys: Array) -> Array:
        return np.argsort(keys, kind="stable")


class MlxOps:
    name = "mlx"

    def __init__(self) -> None:
        import mlx.core as mx

        self.mx = mx
        self.xp: Any = mx
        self.int64: Any = mx.int64

    def asarray(self, values: np.ndarray) -> Array:
        return self.mx.array(values)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def scatter_add(self, size: int, index: Array, weights: Array) -> Array:
        mx = self.mx
        return mx.zeros((size,), dtype=weights.dtype).at[index].add(weights)

    def count(self, size: int, index: Array) -> Array:
        mx = self.mx
        return mx.zeros((size,), dtype=mx.int64).at[index].add(1)

    def nonzero(self, mask: Array) -> Array:
        """Indices where mask is true, ascending. The output's size depends on the
        data, which MLX graphs do not have: compact on the host (zero-copy view)."""
        return self.mx.array(np.flatnonzero(np.asarray(mask)))

    def unique_inverse(self, keys: Array) -> tuple[Array, Array]:
        """Sort, mark where the key changes, cumsum to group ids, scatter back."""
        mx = self.mx
        n = keys.shape[0]
        if n == 0:
            return keys, keys
        order = mx.argsort(keys)
        ordered = keys[order]
        change = mx.concatenate([mx.ones((1,), dtype=mx.int64),
                                 (ordered[1:] != ordered[:-1]).astype(mx.int64)])
        group = mx.cumsum(change) - 1
        count = int(group[-1].item()) + 1
        uniq = mx.zeros((count,), dtype=keys.dtype)
        uniq[group] = ordered
        inverse = mx.zeros((n,), dtype=mx.int64)
        inverse[order] = group
        return uniq, inverse

    def searchsorted(self, sorted_keys: Array, values: Array, side: str) -> Array:
        return self.mx.searchsorted(sorted_keys, values, side=side).astype(self.mx.int64)

    def argsort(self, keys: Array) -> Array:
        return self.mx.argsort(keys)


def make_ops(name: str) -> NumpyOps | MlxOps:
    if name == "numpy":
        return NumpyOps()
    if name == "mlx":
        return MlxOps()
    raise ValueError(f"unknown surveillance backend {name!r} (mlx or numpy)")
