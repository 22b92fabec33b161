"""Global sensitivity of one output over parameter ranges: Sobol indices and DGSM.

Each parameter ``x_i`` is drawn uniformly in its *sampling coordinate* ``z_i``: ``z = x`` for a
``"linear"`` range, ``z = ln x`` for a ``"log"`` range. SALib draws the Saltelli/Sobol' design
and estimates first-order ``S1`` and total ``ST`` indices (with bootstrap confidence
half-widths); the model runs in ONE jitted, vectorised call over all samples, which also returns
the exact derivatives by forward-mode autodiff for the derivative-based measure (Sobol &
Kucherenko 2009, the convention of SALib's ``dgsm``):

``nu_i = E[(dY/dz_i)^2]``, ``dgsm_i = (z_hi - z_lo)^2 nu_i / (pi^2 Var Y)``, ``ST_i <= dgsm_i``

(the Poincare inequality for a uniform ``z_i``). Expectations are sample means over all model
evaluations of the design (every row is uniform on the box). See docs/sensitivity.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from SALib.analyze import sobol as sobol_analyze
from SALib.sample import sobol as sobol_sample

from limits.autodiff.elasticities import _tangent_outputs, block_shape, check_metrics, check_wrt
from limits.model.outputs import OUTPUTS
from limits.model.params import ParameterError, Params

__all__ = ["sobol_indices", "Range"]

#: (low, high, "log" | "linear") in SI units of the parameter
Range = tuple[float, float, str]


def _check_ranges(ranges: Mapping[str, Range]) -> None:
    check_wrt(list(ranges))
    for name, spec in ranges.items():
        if len(spec) != 3 or spec[2] not in ("log", "linear"):
            raise ParameterError(
                f"ranges[{name!r}] = {spec!r}: expected (low, high, 'log' or 'linear')"
            )
        lo, hi, scale = float(spec[0]), float(spec[1]), spec[2]
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ParameterError(f"ranges[{name!r}]: need finite low < high, got ({lo:g}, {hi:g})")
        if scale == "log" and lo <= 0:
            raise ParameterError(f"ranges[{name!r}]: a log range needs low > 0, got {lo:g}")


def _to_parameter(u: np.ndarray, spec: Range) -> np.ndarray:
    lo, hi, scale = float(spec[0]), float(spec[1]), spec[2]
    if scale == "log":
        return np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * u)
    return lo + (hi - lo) * u


def _width(spec: Range) -> float:
    lo, hi, scale = float(spec[0]), float(spec[1]), spec[2]
    return math.log(hi / lo) if scale == "log" else hi - lo


def sobol_indices(
    params: Params,
    metric: str,
    ranges: Mapping[str, Range],
    n: int = 1024,
    *,
    seed: int = 0,
    log_metric: bool = False,
    num_resamples: int = 100,
    conf_level: float = 0.95,
) -> xr.Dataset:
    """Sobol first-order/total indices and DGSM of ``metric`` over ``ranges``.

    **Arguments:** ``params``: one design point (scalar leaves) giving the values of the
    parameters that do not vary; ``metric``: a continuous output of ``limits.evaluate``;
    ``ranges``: ``{name: (low, high, "log" | "linear")}`` in SI units (continuous parameters
    only); ``n``: base sample size (a power of 2; ``n x (D + 2)`` model runs); ``log_metric``:
    analyse ``ln(metric)`` instead of the metric.

    **Returns:** an ``xarray.Dataset`` with dimension ``param`` and variables ``S1``,
    ``S1_conf``, ``ST``, ``ST_conf``, ``dgsm`` (coordinates ``low``, ``high``, ``scale``).
    """
    check_metrics([metric])
    _check_ranges(ranges)
    if block_shape(params) != ():
        raise ParameterError(
            "sobol_indices needs one design point: params has array leaves of "
            f"shape {block_shape(params)}"
        )
    names = list(ranges)
    problem = {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}
    unit = sobol_sample.sample(problem, n, calc_second_order=False, seed=seed)
    samples = {name: _to_parameter(unit[:, i], ranges[name]) for i, name in enumerate(names)}

    @jax.jit
    def run(values):
        out, d_out, _ = _tangent_outputs(params.replace(**values), [metric], names, log=False)
        y, dy_dx = out[metric], d_out[metric]  # (N,), (D, N)
        dz_dx = jnp.stack(
            [
                values[name] if ranges[name][2] == "log" else jnp.ones_like(values[name])
                for name in names
            ]
        )
        dy_dz = dy_dx * dz_dx  # d/d ln x = x d/dx
        if log_metric:
            return jnp.log(y), dy_dz / y[None]
        return y, dy_dz

    y, dy_dz = (np.asarray(a) for a in run({k: jnp.asarray(v) for k, v in samples.items()}))
    si = sobol_analyze.analyze(
        problem,
        y,
        calc_second_order=False,
        num_resamples=num_resamples,
        conf_level=conf_level,
        seed=seed,
    )
    nu = np.mean(dy_dz**2, axis=1)
    widths = np.array([_width(ranges[name]) for name in names])
    dgsm = widths**2 * nu / (math.pi**2 * np.var(y))

    what = f"ln({metric})" if log_metric else metric
    units = "1" if log_metric else OUTPUTS[metric][0]
    coords = {
        "param": names,
        "low": ("param", [float(ranges[k][0]) for k in names]),
        "high": ("param", [float(ranges[k][1]) for k in names]),
        "scale": ("param", np.array([ranges[k][2] for k in names], dtype=object)),
    }
    ds = xr.Dataset(
        {
            "S1": (
                "param",
                si["S1"],
                {"units": "1", "long_name": f"first-order Sobol index of {what}"},
            ),
            "S1_conf": (
                "param",
                si["S1_conf"],
                {"units": "1", "long_name": f"{conf_level:g} confidence half-width of S1"},
            ),
            "ST": ("param", si["ST"], {"units": "1", "long_name": f"total Sobol index of {what}"}),
            "ST_conf": (
                "param",
                si["ST_conf"],
                {"units": "1", "long_name": f"{conf_level:g} confidence half-width of ST"},
            ),
            "dgsm": (
                "param",
                dgsm,
                {
                    "units": "1",
                    "long_name": f"DGSM upper bound of ST: (z_hi - z_lo)^2 E[(d {what}/dz)^2] / "
                    f"(pi^2 Var {what})",
                },
            ),
        },
        coords=coords,
        attrs={
            "metric": metric,
            "metric_units": units,
            "log_metric": int(log_metric),
            "n_base": n,
            "n_model_runs": int(y.size),
            "seed": seed,
            "variance": float(np.var(y)),
        },
    )
    return ds
