"""Answers in one command: the best configuration under latency targets, the Pareto frontier,
what binds and by how much, what a chip or model change buys; from a store, or straight from
presets without writing one (``python -m limits.query --help``; docs/query.md).

Questions are asked in serving terms (TTFT, TPOT, tokens/s per user, per chip). Each term is
answered by the first model output of its ``ROLES`` entry that the model's catalogue
(``limits.model.outputs.OUTPUTS``) or the analysis layer's ``DERIVED`` knows and the data
holds; the decode-step stand-ins come last and every answer says which one it used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from limits.analysis._common import DERIVED, metric
from limits.errors import ParameterError
from limits.model.outputs import BOUND_LABELS, OUTPUTS, SERVING_FIGURES
from limits.units import parse_quantity

__all__ = [
    "ROLES",
    "DEFAULT_GRID",
    "Role",
    "resolve",
    "from_presets",
    "select",
    "Best",
    "best",
    "frontier",
    "fmt",
]


@dataclass(frozen=True)
class Role:
    """A serving term: its display name, whether larger is better, and the outputs that can
    answer it in order of preference with a note for each stand-in."""

    title: str
    candidates: tuple[str, ...]
    notes: Mapping[str, str] = field(default_factory=dict)
    #: the notes hold only while the model lacks this output (``ttft`` keeps its name when the
    #: serving model replaces the isolated prefill, which comes with ``tpot``)
    notes_until: str | None = None


ROLES: dict[str, Role] = {
    "ttft": Role(
        "TTFT",
        ("ttft_at_load", "ttft"),
        {"ttft": "TTFT = ttft, the prefill of one prompt alone (no queueing, no batching)"},
    ),
    "tpot": Role(
        "TPOT",
        ("tpot", "tbt"),
        {"tbt": "TPOT = tbt, the decode step time per generated token (no prefill interference)"},
    ),
    "tps_per_user": Role("tokens/s per user", ("output_tps_per_user", "utps"), {}),
    "tps_per_chip": Role(
        "tokens/s per chip",
        ("output_tps_per_chip", "stps_per_chip"),
        {"stps_per_chip": "tokens/s per chip = stps / chips, decode tokens of a full batch"},
    ),
    "tps": Role(
        "tokens/s",
        ("output_tps", "stps"),
        {"stps": "tokens/s = stps, decode tokens of full batches on all replicas"},
    ),
    "requests_per_s": Role("requests/s", ("requests_per_s",), {}),
}

#: outputs of the serving model; an answer in their terms is checked with `serving_feasible`
SERVING_NAMES = frozenset(SERVING_FIGURES)

#: the search grid of a question asked of presets (SI values; extended with --set grid.x=[..])
DEFAULT_GRID: dict[str, list[float]] = {
    "tp": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
    "batch": [float(2**k) for k in range(11)],
}


def _known(name: str) -> bool:
    return name in OUTPUTS or name in DERIVED


def _available(ds: xr.Dataset, name: str) -> bool:
    try:
        metric(ds, name)
    except KeyError:
        return False
    return True


def resolve(ds: xr.Dataset, term: str) -> tuple[str, str | None]:
    """``(output name, note)`` answering `term`: a ``ROLES`` key (the first candidate known
    to the model and present in `ds`; the note says when a stand-in was used) or an output or
    derived name. Unknown names raise ``ParameterError`` listing the choices."""
    if term in ROLES:
        role = ROLES[term]
        for name in role.candidates:
            if _known(name) and _available(ds, name):
                if role.notes_until is not None and role.notes_until in OUTPUTS:
                    return name, None
                return name, role.notes.get(name)
        raise ParameterError(
            f"{term} ({role.title}) needs one of {', '.join(role.candidates)}; the data holds "
            f"none of them (stored: {', '.join(map(str, ds.data_vars))})"
        )
    if not _known(term):
        raise ParameterError(
            f"{term!r} is not a model output; choose a term ({', '.join(ROLES)}) or an output "
            f"({', '.join([*OUTPUTS, *(d for d in DERIVED if d not in OUTPUTS)])})"
        )
    if not _available(ds, term):
        raise ParameterError(
            f"{term} is not in the data; stored: {', '.join(map(str, ds.data_vars))}"
        )
    return term, None


def from_presets(
    hardware: str, model: str, overrides: Sequence[str] = (), grid: bool = True
) -> xr.Dataset:
    """Evaluate the model on a grid in memory (nothing written) and return it in the layout
    of a store: `hardware` and `model` presets, ``DEFAULT_GRID`` (unless `grid` is False)
    and Hydra `overrides` of ``python -m limits.sweep`` (``deployment.context=8192``,
    ``++grid.batch=[1,8]``, ``++grid.batch={start:1,stop:512,num:10,scale:log}``,
    ``++grid.context=[4096,32768]``) applied after them; an axis they name replaces the
    default one in place (``compose`` lets a range replace a list)."""
    import jax
    from omegaconf import OmegaConf

    from limits.fast import evaluate
    from limits.sweep.config import params_from_cfg
    from limits.sweep.grid import broadcast_axes, parse_grid, validate_grid
    from limits.sweep.job import compose

    axes = [f"++grid.{n}=[{','.join(f'{v:g}' for v in vs)}]" for n, vs in DEFAULT_GRID.items()]
    # grid=point starts empty, so an axis is added (++), whether or not the user wrote ++
    overrides = [f"++{o}" if o.startswith("grid.") else o for o in overrides]
    cfg = compose(
        [
            f"hardware={hardware}",
            f"model={model}",
            "grid=point",
            *(axes if grid else []),
            *overrides,
        ]
    )
    OmegaConf.resolve(cfg)
    base = params_from_cfg(cfg)
    spec = OmegaConf.to_container(cfg.grid, resolve=True)
    parsed = parse_grid({str(k): v for k, v in spec.items()} if isinstance(spec, dict) else {})
    validate_grid(base, parsed)
    with jax.enable_x64(True):
        values = [np.asarray(v, dtype=np.float64) for v in parsed.axes.values()]
        cast = jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=np.float64), base)
        out = evaluate(cast.replace(**broadcast_axes(parsed.names, values)))
        # broadcast on the host: eagerly, each jnp.broadcast_to would compile a program
        host = {k: np.array(np.broadcast_to(np.asarray(v), parsed.shape)) for k, v in out.items()}
    coords = {
        n: (n, parsed.coord(n), {"units": parsed.units(n), "long_name": parsed.long_name(n)})
        for n in parsed.names
    }
    data = {
        k: (parsed.names, host[k], {"units": OUTPUTS[k][0], "long_name": OUTPUTS[k][1]})
        for k in OUTPUTS
        if k in host
    }
    ds = xr.Dataset(data, coords=coords)
    ds["bound"].attrs["labels"] = list(BOUND_LABELS)
    ds.attrs.update(
        config=OmegaConf.to_yaml(cfg),
        hardware=str(cfg.hardware.name),
        model=str(cfg.model.name),
        source=f"presets hardware={hardware} model={model}, evaluated in memory",
    )
    return ds


#: axes that describe the workload rather than a configuration one would choose
WORKLOAD_AXES = ("context", "prompt_len", "output_len", "acceptance_rate")


def select(ds: xr.Dataset, at: Mapping[str, Any]) -> xr.Dataset:
    """The slice of `ds` at ``{axis: value}`` (values in SI or strings with units, e.g.
    ``{"context": "8 Ki"}``); a value the axis lacks is a ``ParameterError`` listing them."""
    from limits.model.params import parameter_index

    index = parameter_index()
    for name, raw in at.items():
        if name not in ds.dims:
            raise ParameterError(
                f"--at {name}: not an axis of the data; axes: {', '.join(map(str, ds.dims))}"
            )
        kind = index[name][1].unit if name in index else "1"
        value = parse_quantity(raw, kind, name) if isinstance(raw, str) else float(raw)
        values = np.asarray(ds[name].values, dtype=np.float64)
        hit = np.nonzero(np.isclose(values, value, rtol=1e-9, atol=0.0))[0]
        if hit.size == 0:
            raise ParameterError(
                f"--at {name}={raw}: not on the axis; {name}: {', '.join(f'{v:g}' for v in values)}"
            )
        ds = ds.isel({name: int(hit[0])})
    return ds


_PREFIXES = ((1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1.0, ""))


def fmt(value: Any, units: str) -> str:
    """``value`` with its units for a reader: seconds and bytes scaled (``19.2 ms``,
    ``80.5 GB``), other quantities with 4 significant digits."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return f"{value}"
    if not math.isfinite(x):
        return f"{x}"
    if units == "s" and x != 0.0:
        scale, prefix = next(((s, p) for s, p in reversed(_PREFIXES) if abs(x) >= s), (1e-9, "n"))
        return f"{x / scale:.4g} {prefix}s"
    if units == "B":
        for scale, prefix in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
            if abs(x) >= scale:
                return f"{x / scale:.4g} {prefix}"
        return f"{x:.4g} B"
    if x.is_integer() and abs(x) < 1e9:  # counts and token lengths: all digits
        return f"{x:.0f}" + (f" {units}" if units not in ("1", "") else "")
    if units in ("1", ""):
        return f"{x:.6g}"
    return f"{x:.4g} {units}"


def _units(ds: xr.Dataset, name: str) -> str:
    return str(metric(ds, name).attrs.get("units", ""))


def _show(da: xr.DataArray) -> str:
    return fmt(da.values, str(da.attrs.get("units", "")))


_SHOWN = ("ttft", "tpot", "tps_per_user", "tps", "tps_per_chip")


@dataclass
class Best:
    """The answer to "best configuration under constraints": the point (a computed Dataset
    of scalars), the output that answered each term, notes on stand-ins, and the limits."""

    point: xr.Dataset
    objective: str
    names: dict[str, str]
    notes: list[str]
    limits: dict[str, tuple[str, float]]
    searched: list[str]
    neighbours: list[str]

    def lines(self) -> list[str]:
        """The answer as text lines (units everywhere)."""
        p = self.point
        out = []
        config = ", ".join(
            f"{d} = {fmt(p[d].values, p[d].attrs.get('units', ''))}" for d in self.searched
        )
        out.append(f"best configuration: {config}")
        for term in _SHOWN:
            name = self.names.get(term)
            if name is None:
                continue
            da = metric(p, name)
            mark = "  <- maximised" if name == self.objective else ""
            limit = self.limits.get(name)
            bound = (
                f"  (limit {limit[0]} {fmt(limit[1], da.attrs.get('units', ''))})" if limit else ""
            )
            title = ROLES[term].title
            out.append(f"  {title:<18} {_show(da):>16}  [{name}]{bound}{mark}")
        if self.objective not in self.names.values():
            da = metric(p, self.objective)
            out.append(f"  {self.objective:<18} {_show(da):>16}  <- maximised")
        for name in ("chips", "memory_required", "memory_available"):
            if name in p:
                out.append(f"  {name:<18} {fmt(p[name].values, p[name].attrs['units']):>16}")
        out.extend(self.binds())
        out.extend(self.neighbours)
        out.extend(f"note: {n}" for n in self.notes)
        return out

    def binds(self) -> list[str]:
        """What binds and by how much, for the quantity answered: the serving pass's walls
        (``serving_bound``, ``serving_t_*``) when the objective or a limit is a serving output,
        else the decode step's (``bound``, ``t_*``); then how much of each limit is used."""
        p = self.point
        out = []
        serving = any(n in SERVING_NAMES for n in (self.objective, *self.limits))
        prefix, what = ("serving_", "serving pass walls") if serving else ("", "decode step walls")
        walls = [f"{prefix}t_{w}" for w in ("mem", "compute", "sync")]
        if serving and not all(t in p for t in (f"{prefix}bound", *walls)):
            out.append(  # an older store: say whose walls follow
                "what binds in serving: not in the data (no serving_bound, serving_t_*); "
                "the decode step's walls:"
            )
            prefix, what = "", "decode step walls"
            walls = [f"t_{w}" for w in ("mem", "compute", "sync")]
        if f"{prefix}bound" in p and all(t in p for t in walls):
            label = BOUND_LABELS[int(p[f"{prefix}bound"].values)]
            times = {t: float(p[t].values) for t in walls}
            ranked = sorted(times.items(), key=lambda kv: -kv[1])
            (w1, t1), (w2, t2) = ranked[0], ranked[1]
            listed = ", ".join(f"{t} {fmt(v, 's')}" for t, v in times.items())
            out.append(
                f"what binds: {label} ({what}: {listed}; {w1} exceeds {w2} by {t1 / t2:.3g}x)"
                if t2 > 0
                else f"what binds: {label}"
            )
        for name, (op, value) in self.limits.items():
            if not value or op == "==":  # a flag the answer must have (serving_feasible): no share
                continue
            got = float(metric(p, name).values)
            out.append(
                f"  {name} uses {got / value:.1%} of its limit ({op} {fmt(value, _units(p, name))})"
            )
        return out


def _limits(ds: xr.Dataset, targets: Mapping[str, float]) -> tuple[dict, dict, list[str]]:
    """Constraints ``{output: (op, value)}`` from targets keyed by term."""
    names, notes, constraints = {}, [], {}
    for term in _SHOWN:
        try:
            names[term], note = resolve(ds, term)
        except ParameterError:
            if term in targets:
                raise
            continue
        if note:
            notes.append(note)
    for term, value in targets.items():
        op = ">=" if term.startswith("tps") else "<="
        constraints[names[term]] = (op, float(value))
    return names, constraints, notes


def best(
    ds: xr.Dataset,
    maximize: str = "tps_per_chip",
    targets: Mapping[str, float] | None = None,
    where: Mapping[str, tuple[str, float]] | None = None,
) -> Best:
    """The best point of `ds` (every dim searched) maximising `maximize` (a term or an output)
    with `targets` ``{term: limit in SI}`` (``ttft``/``tpot`` upper, ``tps*`` lower limits)
    and extra ``where`` constraints ``{output: (op, value)}``. Raises ``ParameterError``
    naming the limits when no feasible point meets them."""
    from limits.analysis import best_config

    names, constraints, notes = _limits(ds, dict(targets or {}))
    objective, note = resolve(ds, maximize)
    if note and note not in notes:
        notes.append(note)
    for name, spec in (where or {}).items():
        constraints[resolve(ds, name)[0]] = spec
    if "serving_feasible" in ds and (
        objective in SERVING_NAMES or SERVING_NAMES & set(constraints)
    ):
        # a serving answer must fit at its serving load, not only at the decode step's context
        constraints["serving_feasible"] = ("==", True)
    try:
        point = best_config(ds, objective, constraints)
    except ValueError:
        raise ParameterError(
            f"no feasible configuration meets {_describe(ds, constraints)}; relax a limit or "
            f"widen the grid (--set grid.tp=[...] grid.batch=[...])"
        ) from None
    searched = [str(d) for d in ds.dims if ds.sizes[d] > 1]
    notes.extend(
        f"the search chose the workload axis {d} too; fix it with --at {d}=VALUE"
        for d in searched
        if d in WORKLOAD_AXES
    )
    answer = Best(point, objective, names, notes, constraints, searched, [])
    answer.neighbours = _neighbours(ds, point, constraints, searched)
    return answer


def _describe(ds: xr.Dataset, constraints: Mapping[str, tuple[str, float]]) -> str:
    return (
        ", ".join(
            f"{n} {op} {fmt(v, metric(ds, n).attrs.get('units', ''))}"
            for n, (op, v) in constraints.items()
        )
        or "no limits"
    )


def _neighbours(
    ds: xr.Dataset, point: xr.Dataset, constraints: Mapping[str, tuple[str, float]], dims: list[str]
) -> list[str]:
    """Why not one step further along each searched axis: the limit the next value breaks."""
    from limits.analysis import satisfies

    out = []
    for d in dims:
        values = ds[d].values
        i = int(np.nonzero(values == point[d].values)[0][0])
        if i + 1 >= len(values):
            continue
        here = {k: point[k].values for k in dims if k != d}
        nxt = ds.sel({**here, d: values[i + 1]})
        broken = []
        if "feasible" in nxt and not bool(nxt["feasible"].values):
            broken.append(
                f"does not fit in memory ({fmt(nxt['memory_required'].values, 'B')} > "
                f"{fmt(nxt['memory_available'].values, 'B')})"
                if "memory_required" in nxt and "memory_available" in nxt
                else "does not fit in memory"
            )
        for name, (op, value) in constraints.items():
            if not bool(satisfies(nxt, {name: (op, value)}, feasible_only=False).values):
                units = metric(nxt, name).attrs.get("units", "")
                broken.append(
                    f"{name} {fmt(metric(nxt, name).values, units)} breaks {op} {fmt(value, units)}"
                )
        if broken:
            out.append(f"  next {d} = {fmt(values[i + 1], _units(ds, d))}: {'; '.join(broken)}")
    return out


def frontier(ds: xr.Dataset, x: str = "tps_per_user", y: str = "tps_per_chip") -> Any:
    """The Pareto frontier of the two terms or outputs as a ``limits.analysis.Table`` (every
    dim searched), with the configurations and the binding wall of each point."""
    from limits.analysis import bound_labels, pareto_frontier

    xn, _ = resolve(ds, x)
    yn, _ = resolve(ds, y)
    extra = [n for n in ("ttft", "tbt", "tpot") if n in ds and n not in (xn, yn)]
    table = pareto_frontier(ds, xn, yn, columns=extra)
    if "bound" in ds and len(table):
        labels = bound_labels(ds)
        table["bound"] = [
            str(labels.sel({d: row[d] for d in labels.dims}).values) for _, row in table.iterrows()
        ]
    return table
