"""Calibration by autodiff: fit calibration parameters to measurements in log space.

The forward function is the model itself. Rows that share static fields (preset kind,
serving mode) are stacked into one ``Params`` whose leaves have one entry per row, so each
batch is one broadcast evaluation; every batch of the data set is evaluated in one jitted
function. Residuals are ``log(predicted) - log(measured)``; their Jacobian comes from
``jax.jacfwd`` (few parameters, many rows: forward mode) and feeds
``scipy.optimize.least_squares`` (trust-region reflective with bounds, robust loss): a
well-kept optimiser, rather than a hand-written Gauss-Newton loop.

Parameters are fitted in scaled units (seconds as microseconds) within physical bounds
(``0 < efficiency <= 1``, overheads ``>= 0``). Groups (``group`` ids per row) get their own
values; groups with fewer than ``min_rows`` fitting rows take the shared fit (all rows).
The standard error of each value is ``sqrt(diag((J^T J)^-1) s^2)`` at the optimum, with
``s^2`` the residual variance (rows minus parameters degrees of freedom).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import least_squares

from limits.errors import ParameterError
from limits.model.outputs import DECODE_FIGURES, SERVING_FIGURES
from limits.model.params import Params

__all__ = [
    "FITTABLE",
    "DEFAULT_FIT",
    "CALIBRATED_OUTPUTS",
    "Batch",
    "Problem",
    "Fit",
    "fit",
    "mape",
    "expected",
    "check_covariance",
]

#: fittable parameter -> (fit-space unit in SI, lower bound, upper bound) in fit units
FITTABLE: dict[str, tuple[float, float, float]] = {
    "mem_efficiency": (1.0, 1e-3, 1.0),
    "kv_mem_efficiency": (1.0, 1e-3, 1.0),
    "flops_efficiency": (1.0, 1e-3, 1.0),
    "prefill_flops_efficiency": (1.0, 1e-3, 1.0),
    "allreduce_efficiency": (1.0, 1e-3, 1.0),
    "alltoall_efficiency": (1.0, 1e-3, 1.0),
    "layer_overhead": (1e-6, 0.0, np.inf),  # microseconds
    "iteration_overhead": (1e-6, 0.0, np.inf),
    "collective_overhead": (1e-6, 0.0, np.inf),
    "request_overhead": (1e-3, 0.0, np.inf),  # milliseconds
    "engine_prefill_budget": (1e3, 0.064, np.inf),  # thousands of tokens, >= 64 tokens
}
DEFAULT_FIT = (
    "mem_efficiency",
    "kv_mem_efficiency",
    "flops_efficiency",
    "prefill_flops_efficiency",
    "layer_overhead",
    "iteration_overhead",
    "allreduce_efficiency",
    "collective_overhead",
    "request_overhead",
    "engine_prefill_budget",
)
#: outputs a calibration predicts (times and rates that the efficiencies and overheads
#: move): sweeps with a fitted profile store ``<name>_expected`` and ``<name>_band`` for these
CALIBRATED_OUTPUTS = (*DECODE_FIGURES, *SERVING_FIGURES)
# fit units: strictly inside the bounds; a budget starts at 2,048 tokens, below most rows'
# steady-state prefill share, because above every row's share it has no gradient
_START = {"efficiency": 0.5, "overhead": 10.0, "budget": 2.048}


@dataclasses.dataclass(frozen=True)
class Batch:
    """Rows that share static fields: ``params`` leaves have shape ``(n,)`` (or broadcast);
    ``metric[i]`` indexes ``outputs`` (model output names), ``scale[i]`` converts the
    output to the measurement's unit, ``measured[i] > 0``."""

    params: Params
    outputs: tuple[str, ...]
    metric: np.ndarray
    scale: np.ndarray
    measured: np.ndarray

    def __len__(self) -> int:
        return len(self.measured)


def _start(name: str) -> float:
    kind = next((k for k in ("efficiency", "budget") if name.endswith(k)), "overhead")
    return _START[kind]


class Problem:
    """The residual function of a data set and its Jacobian, compiled once per number of
    groups; masks and group ids are arguments, so hold-outs and folds reuse the compile."""

    def __init__(
        self,
        batches: Sequence[Batch],
        names: Sequence[str] = DEFAULT_FIT,
        fn: Callable[[Params], dict] | None = None,
    ):
        unknown = [n for n in names if n not in FITTABLE]
        if unknown or not names:
            raise ParameterError(
                f"--fit {', '.join(unknown) or '(none)'}: not fittable; choose from "
                f"{', '.join(FITTABLE)}"
            )
        if len(set(names)) != len(names):
            raise ParameterError(f"--fit {', '.join(names)}: a parameter is named twice")
        if fn is None:
            from limits.model import evaluate as fn
        self.batches = list(batches)
        self.names = tuple(names)
        self.unit = np.array([FITTABLE[n][0] for n in names])
        self.lower = np.array([FITTABLE[n][1] for n in names])
        self.upper = np.array([FITTABLE[n][2] for n in names])
        self.x0 = np.array([_start(n) for n in names])
        self.measured = np.concatenate([b.measured for b in self.batches]).astype(np.float64)
        if not (self.measured > 0).all():
            raise ParameterError("measured values must be > 0 (the fit is in log space)")
        self._fn = fn
        self._slices = np.cumsum([0] + [len(b) for b in self.batches])
        self._residuals = jax.jit(self._residuals_impl)
        self._jacobian = jax.jit(jax.jacfwd(self._residuals_impl))

    def __len__(self) -> int:
        return len(self.measured)

    def _residuals_impl(self, u, group):
        """Log residuals of every row; ``u`` is ``(G, k)`` in fit units, ``group`` ``(n,)``."""
        out = []
        for b, lo, hi in zip(self.batches, self._slices[:-1], self._slices[1:], strict=True):
            values = u[group[lo:hi]] * self.unit[None, :]  # (n_b, k) in SI
            p = b.params.replace(**{n: values[:, j] for j, n in enumerate(self.names)})
            o = self._fn(p)
            shape = (len(b),)
            pred = jnp.stack([jnp.broadcast_to(o[k], shape) for k in b.outputs])
            chosen = jnp.take_along_axis(pred, jnp.asarray(b.metric)[None, :], axis=0)[0]
            out.append(jnp.log(chosen * b.scale) - jnp.log(b.measured))
        return jnp.concatenate(out)

    def residuals(self, u: np.ndarray, group: np.ndarray) -> np.ndarray:
        with jax.enable_x64(True):
            return np.asarray(self._residuals(jnp.asarray(u), jnp.asarray(group)))

    def jacobian(self, u: np.ndarray, group: np.ndarray) -> np.ndarray:
        """``d residual / d u`` as ``(n, G * k)`` (row-major over groups then parameters)."""
        with jax.enable_x64(True):
            j = np.asarray(self._jacobian(jnp.asarray(u), jnp.asarray(group)))
        return j.reshape(len(self), -1)

    def predict(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Predicted figures (in the measurements' units) for per-row values in SI."""
        u = np.stack(
            [
                np.asarray(values[n], dtype=np.float64) / s
                for n, s in zip(self.names, self.unit, strict=True)
            ],
            axis=-1,
        )
        u = np.broadcast_to(u, (len(self), len(self.names)))
        r = self.residuals(u, np.arange(len(self)))
        return self.measured * np.exp(r)


@dataclasses.dataclass
class Fit:
    """Fitted values (SI) per group label and shared, their standard errors and covariance,
    the rows used."""

    names: tuple[str, ...]
    shared: dict[str, float]
    shared_stderr: dict[str, float]
    shared_cov: np.ndarray  # (k, k) covariance in SI, order of ``names`` (for bands)
    groups: dict[str, dict[str, float]]
    groups_stderr: dict[str, dict[str, float]]
    groups_cov: dict[str, np.ndarray]
    rows: dict[str, int]  # group label -> fitting rows ("*": all)
    fallback: list[str]  # groups that took the shared values
    group_of: np.ndarray  # row -> group index into labels (-1: shared only)
    labels: list[str]

    def per_row(self, n: int) -> dict[str, np.ndarray]:
        """Values (SI) for each of ``n`` rows: its group's, else the shared ones."""
        out = {}
        for name in self.names:
            col = np.full(n, self.shared[name])
            for gi, label in enumerate(self.labels):
                if label in self.groups:
                    col[self.group_of == gi] = self.groups[label][name]
            out[name] = col
        return out

    def calibration(self) -> dict[str, Any]:
        """The flat mapping (shared values), with ``groups`` when fitted by group."""
        flat: dict[str, Any] = {n: float(v) for n, v in self.shared.items()}
        if self.groups:
            flat["groups"] = {
                g: {n: float(v) for n, v in vs.items()} for g, vs in self.groups.items()
            }
        return flat


def _solve(problem, group, mask, n_groups, free, base, loss, f_scale, weight, shared_start=False):
    """Least squares over the free groups' parameters (others fixed at ``base``); each row's
    residual scaled by ``weight``."""
    k = len(problem.names)
    rows = np.flatnonzero(mask)
    w = weight[rows]
    free_cols = np.concatenate([np.arange(g * k, (g + 1) * k) for g in free])

    def full(x):
        u = base.copy()
        u[free] = x.reshape(len(free), k)
        return u

    def fun(x):
        return problem.residuals(full(x), group)[rows] * w

    def jac(x):
        return problem.jacobian(full(x), group)[np.ix_(rows, free_cols)] * w[:, None]

    # groups start from the shared fit (``base``): a parameter their rows do not move (its
    # Jacobian column is 0) keeps the shared value; the shared fit starts at ``problem.x0``
    x0 = base[free].ravel() if shared_start else np.tile(problem.x0, len(free))
    lower = np.tile(problem.lower, len(free))
    upper = np.tile(problem.upper, len(free))
    res = least_squares(
        fun,
        x0,
        jac=jac,
        bounds=(lower, upper),
        method="trf",
        loss=loss,
        f_scale=f_scale,
        x_scale="jac",
    )
    # values within 1e-9 (fit units) of a bound are on it: write 0, not 2e-18
    x = np.where(np.abs(res.x - lower) < 1e-9, lower, res.x)
    x = np.where(np.abs(upper - x) < 1e-9, upper, x)
    u = full(x)
    j = res.jac  # scaled by the robust loss's weights: J^T J is its Gauss-Newton Hessian
    dof = max(len(rows) - len(res.x), 1)
    s2 = 2.0 * float(res.cost) / dof  # the loss's residual variance (plain for "linear")
    cov = np.linalg.pinv(j.T @ j) * s2
    # a parameter no fitted row depends on is not determined: nan, not a zero variance
    blind = ~np.any(j != 0.0, axis=0)
    cov[blind, :] = np.nan
    cov[:, blind] = np.nan
    return u, cov


def fit(
    problem: Problem,
    mask: np.ndarray | None = None,
    group_of: np.ndarray | None = None,
    labels: Sequence[str] = (),
    min_rows: int = 20,
    loss: str = "cauchy",
    f_scale: float = 0.1,
    weight: np.ndarray | None = None,
) -> Fit:
    """Fit on the rows where ``mask`` is true: the shared values on all of them, then each
    group (``group_of[i]`` indexes ``labels``) with at least ``min_rows`` rows on its own.
    ``loss`` and ``f_scale`` (in log units: 0.1 is ~10%) are least_squares' robust loss;
    the default (Cauchy) gives rows far off little weight. ``weight`` scales each row's
    residual (default 1)."""
    n = len(problem)
    weight = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    mask = np.ones(n, bool) if mask is None else np.asarray(mask, bool)
    if mask.sum() < len(problem.names) + 1:
        raise ParameterError(f"{int(mask.sum())} rows cannot fit {len(problem.names)} parameters")
    unit = problem.unit
    u, cov = _solve(
        problem,
        np.zeros(n, np.int64),
        mask,
        1,
        [0],
        np.zeros((1, len(problem.names))),
        loss,
        f_scale,
        weight,
    )
    shared = {nm: float(u[0, j] * unit[j]) for j, nm in enumerate(problem.names)}
    k = len(problem.names)
    scale = np.outer(unit, unit)  # fit units -> SI
    shared_cov = cov * scale
    shared_se = {
        nm: float(np.sqrt(np.maximum(shared_cov[j, j], 0.0))) for j, nm in enumerate(problem.names)
    }
    group_of = np.full(n, -1) if group_of is None else np.asarray(group_of)
    counts = {label: int((mask & (group_of == gi)).sum()) for gi, label in enumerate(labels)}
    free = [gi for gi, label in enumerate(labels) if counts[label] >= min_rows]
    fallback = [label for label in labels if counts[label] < min_rows]
    groups: dict[str, dict[str, float]] = {}
    groups_se: dict[str, dict[str, float]] = {}
    groups_cov: dict[str, np.ndarray] = {}
    if free:
        sel = mask & np.isin(group_of, free)
        base = np.tile(u[0], (len(labels), 1))
        ug, covg = _solve(
            problem,
            np.where(group_of >= 0, group_of, 0),
            sel,
            len(labels),
            free,
            base,
            loss,
            f_scale,
            weight,
            shared_start=True,
        )
        for fi, gi in enumerate(free):
            groups[labels[gi]] = {
                nm: float(ug[gi, j] * unit[j]) for j, nm in enumerate(problem.names)
            }
            block = covg[fi * k : (fi + 1) * k, fi * k : (fi + 1) * k] * scale
            groups_cov[labels[gi]] = block
            groups_se[labels[gi]] = {
                nm: float(np.sqrt(np.maximum(block[j, j], 0.0)))
                for j, nm in enumerate(problem.names)
            }
    return Fit(
        names=problem.names,
        shared=shared,
        shared_stderr=shared_se,
        shared_cov=shared_cov,
        groups=groups,
        groups_stderr=groups_se,
        groups_cov=groups_cov,
        rows={"*": int(mask.sum()), **counts},
        fallback=fallback,
        group_of=group_of,
        labels=list(labels),
    )


def mape(predicted: np.ndarray, measured: np.ndarray) -> float:
    """Mean absolute percentage error, in percent."""
    return float(100.0 * np.mean(np.abs(predicted / measured - 1.0)))


def expected(
    p: Params,
    values: dict[str, Any],
    covariance: Any,
    outputs: Sequence[str],
    fn: Callable[[Params], dict] | None = None,
) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Calibrated figures with a one-sigma band: ``{output: (expected, band)}`` for ``p``
    (any grid) with calibration ``values`` (SI, the order of ``covariance``'s rows: an array
    or nested sequences, k x k). The band is ``sqrt(g^T C g)``, ``g`` the outputs'
    derivatives with respect to the values, by one ``jvp`` per value in the same (jittable)
    function: linear error propagation."""
    if fn is None:
        from limits.model import evaluate as fn
    names = list(values)
    dtype = jnp.result_type(p.calibration.mem_efficiency)  # the sweep's precision
    theta = jnp.asarray([values[n] for n in names], dtype=dtype)
    cov = jnp.asarray(covariance, dtype=dtype)

    def figures(t):
        out = fn(p.replace(**{n: t[j] for j, n in enumerate(names)}))
        return {k: out[k] for k in outputs}

    value = figures(theta)
    basis = jnp.eye(len(names), dtype=dtype)
    tangents = jax.vmap(lambda v: jax.jvp(figures, (theta,), (v,))[1])(basis)
    result = {}
    for k in outputs:
        g = tangents[k].reshape(len(names), -1)  # (values, points)
        var = jnp.sum(g * (cov @ g), axis=0).reshape(jnp.shape(tangents[k])[1:])
        result[k] = (value[k], jnp.sqrt(jnp.maximum(var, 0.0)))
    return result


def check_covariance(node: Any, values: Mapping[str, Any]) -> tuple[tuple[str, ...], np.ndarray]:
    """A calibration file's ``covariance`` (``names``: fitted parameters, each with a value
    in ``values``; ``matrix``: their covariance in SI), checked: finite, square, symmetric,
    non-negative variances. Raises ``ParameterError`` in one line naming what is wrong."""
    if not isinstance(node, Mapping) or set(node) != {"names", "matrix"}:
        raise ParameterError("calibration: covariance must map names: [...] and matrix: [[...]]")
    names = node["names"]
    if not isinstance(names, list) or not names or len(set(names)) != len(names):
        raise ParameterError(f"calibration: covariance.names = {names!r}: distinct names needed")
    for name in names:
        if name not in FITTABLE:
            raise ParameterError(f"calibration: covariance.names: {name!r} is not fittable")
        if name not in values:
            raise ParameterError(f"calibration: covariance.names: {name} has no value")
    try:
        matrix = np.asarray(node["matrix"], dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError("calibration: covariance.matrix is not a matrix of numbers") from None
    k = len(names)
    if matrix.shape != (k, k):
        raise ParameterError(
            f"calibration: covariance.matrix has shape {matrix.shape}, expected ({k}, {k})"
        )
    if not np.isfinite(matrix).all():
        raise ParameterError(
            "calibration: covariance.matrix is not finite (a parameter the rows do not determine)"
        )
    if not np.allclose(matrix, matrix.T, rtol=1e-6, atol=0.0):
        raise ParameterError("calibration: covariance.matrix is not symmetric")
    if (np.diag(matrix) < 0).any():
        bad = names[int(np.argmin(np.diag(matrix)))]
        raise ParameterError(f"calibration: covariance.matrix: the variance of {bad} is < 0")
    return tuple(names), matrix
