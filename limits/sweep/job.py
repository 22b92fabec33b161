"""The main job: ``python -m limits.sweep [overrides]`` (console script ``limits-sweep``).

Composes the Hydra config (``conf/config.yaml``), validates the parameters and every grid
axis before anything is compiled, then evaluates the grid block by block with one jitted
function and writes the results into ``<hydra output dir>/sweep.zarr`` (or ``store.path``).
Re-running the same command into the same directory resumes an interrupted sweep.

From Python (tests, notebooks): ``run(cfg)`` takes a composed config; ``run_overrides([...])``
composes and runs, returning the store path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from limits.errors import SweepError
from limits.model.outputs import BOUND_OUTPUTS, DEFAULT_OUTPUTS, OUTPUTS
from limits.model.params import Calibration, ParameterError, Params, parameter_index
from limits.sweep.config import (
    DATA_KEYS,
    calibration_band,
    check_known_keys,
    mapping,
    params_from_cfg,
    replaceable_axes,
    without_axis_resets,
)
from limits.sweep.grid import Grid, axis_lengths, broadcast_axes, parse_grid, validate_grid
from limits.sweep.integrity import (
    INTEGRITY,
    INTEGRITY_ATTR,
    SOURCE_HASH_ATTR,
    check_metadata,
    check_same_code,
    remove_partial_files,
    source_hash,
)
from limits.sweep.reduce import (
    BEST_PREFIX,
    FOUND,
    INDEX_PREFIX,
    ReduceError,
    Reduction,
    finish_host,
    parse_reduction,
)
from limits.sweep.store import (
    PROGRESS_ARRAY,
    ChunkWriter,
    StoreError,
    StoreLayout,
    VariableSpec,
    check_same_config,
    chunk_shape,
    codec_for,
    create_store,
    done_mask,
    mark_done,
    open_store_group,
    output_attrs,
    provenance,
)
from limits.units import UnitError, format_quantity, parse_quantity

__all__ = ["run", "run_overrides", "main", "SweepResult", "SweepError", "CONF_DIR"]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
STORE_NAME = "sweep.zarr"
#: prefix of the per-block headline outputs of the block function (``limits.sweep.blocks``,
#: which this module imports only when it runs a sweep: it imports JAX)
HEADLINE_PREFIX = "_headline_"
USER_ERRORS = (ParameterError, UnitError, StoreError)

#: the job's messages: printed (stdout; warnings and errors on stderr) and logged here, so a
#: Hydra run's log file (``<run dir>/sweep.log``, ``hydra.job_logging`` in conf/config.yaml)
#: holds what the terminal showed
LOG = logging.getLogger("limits.sweep")
LOG.addHandler(logging.NullHandler())  # a library: no handler of its own, none of lastResort's


def _say(message: str, level: int = logging.INFO) -> None:
    """Show one message of the job and log it (``LOG``)."""
    print(message, file=sys.stdout if level < logging.WARNING else sys.stderr, flush=True)
    LOG.log(level, message)


class ForeignRecords(logging.Filter):
    """Keeps the records of every logger but ``limits.*``: the console handler of the job's
    logging config uses it, since the job prints its own messages (``_say``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("limits")


@dataclasses.dataclass
class SweepResult:
    """What ``run`` did: the store, its size, how many blocks were computed, headlines."""

    path: Path
    points: int
    blocks_total: int
    blocks_computed: int
    blocks_skipped: int
    traces: int
    seconds: float
    summary: dict[str, Any]


# --------------------------------------------------------------------------- config helpers


def _data_config(cfg: DictConfig) -> dict[str, Any]:
    """The settings that decide the stored numbers (canonical, for resume checks)."""
    out: dict[str, Any] = {}
    for key in DATA_KEYS:
        node = OmegaConf.select(cfg, key)
        out[key] = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    if not (out.get("reduce") or {}).get("over"):  # no reduction: same data as before it existed
        out.pop("reduce", None)
    if out.get("store.layout") == "full":  # the layout of stores written before store.layout
        out.pop("store.layout")
    return out


def _unresolvable(node: Any, prefix: str = "") -> str | None:
    """Dotted key of the first value whose interpolation fails (OmegaConf.resolve's error
    does not say which)."""
    from omegaconf import ListConfig
    from omegaconf.errors import OmegaConfBaseException

    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for key in keys:
        dotted = f"{prefix}{key!s}"
        try:
            child = node[key]
        except OmegaConfBaseException:
            return dotted
        if isinstance(child, (DictConfig, ListConfig)):
            found = _unresolvable(child, dotted + ".")
            if found:
                return found
    return None


def _reduction(cfg: DictConfig, grid: Grid) -> Reduction | None:
    """The checked ``reduce`` settings (``None``: store every point)."""
    node = mapping(cfg.reduce)
    try:
        return parse_reduction(node, grid.names, OUTPUTS)
    except ReduceError as err:
        raise SweepError(str(err)) from None


def _chunks(cfg: DictConfig, grid: Grid, reduction: Reduction | None) -> tuple[int, ...]:
    """Block shape: ``store.chunk_points`` grid points; reduced axes whole (the other axes
    then share ``chunk_points / (points along the reduced axes)``)."""
    overrides = mapping(cfg.store.chunks)
    over = reduction.over if reduction else ()
    for name in over:
        if name in overrides and int(overrides[name]) != len(grid.axes[name]):
            raise SweepError(
                f"store.chunks.{name} = {overrides[name]}: reduce.over needs the "
                f"whole axis ({len(grid.axes[name])}) in each block; drop it"
            )
    kept = tuple(n for n in grid.names if n not in over)
    reduced = math.prod(len(grid.axes[n]) for n in over)
    small = chunk_shape(
        tuple(len(grid.axes[n]) for n in kept),
        max(1, int(cfg.store.chunk_points) // reduced),
        {k: v for k, v in overrides.items() if k not in over},
        kept,
    )
    part = dict(zip(kept, small))
    return tuple(part.get(n, len(grid.axes[n])) for n in grid.names)


def _resumed_chunks(
    cfg: DictConfig, grid: Grid, reduction: Reduction | None, chunks: tuple[int, ...]
) -> tuple[int, ...]:
    """``chunks``, or the chunk shape of the store being resumed when it differs (a store
    written before the chunk rule changed keeps its own chunks; its progress markers count
    those)."""
    try:
        path = _store_path(cfg)
    except SweepError:
        return chunks
    if not (path / "zarr.json").is_file():
        return chunks
    over = reduction.over if reduction else ()
    kept = tuple(n for n in grid.names if n not in over)
    if not kept:
        return chunks
    part = dict(zip(grid.names, chunks))
    try:  # each axis' chunk length from any variable stored over it (lean layout: not all)
        group = open_store_group(path)
        for name, a in group.arrays():
            if name in grid.names:
                continue
            for d, c in zip(a.metadata.dimension_names or (), a.chunks):
                if d in kept:
                    part[d] = min(int(c), len(grid.axes[d]))
    except Exception:  # not a store of this grid: check_same_config says what differs
        return chunks
    return tuple(part[n] for n in grid.names)


def _variables(cfg: DictConfig) -> tuple[str, ...]:
    spec = cfg.store.variables
    if isinstance(spec, str):
        if spec == "default":
            return tuple(DEFAULT_OUTPUTS)
        if spec == "all":
            return tuple(OUTPUTS)
        spec = [spec]
    names = tuple(str(v) for v in spec)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown or not names:
        raise SweepError(
            f"store.variables: unknown output(s) {', '.join(unknown) or '(empty)'}"
            f"; valid: default, all, or a list of {', '.join(OUTPUTS)}"
        )
    return names


def _sensitivity(cfg: DictConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    metrics = tuple(str(m) for m in cfg.sensitivity.metrics)
    wrt = tuple(str(w) for w in cfg.sensitivity.wrt)
    if not metrics:
        return (), ()
    from limits.autodiff.elasticities import check_metrics

    try:
        check_metrics(metrics)
    except ValueError as err:
        raise SweepError(f"sensitivity.{err}") from None
    index = parameter_index()
    bad = [w for w in wrt if w not in index]
    if bad or not wrt:
        raise SweepError(
            f"sensitivity.wrt: {'unknown parameter(s) ' + ', '.join(bad) if bad else 'empty'}"
            f"; give parameter names from: {', '.join(index)}"
        )
    return metrics, wrt


def _layout(cfg: DictConfig, reduction: Reduction | None) -> str:
    """``store.layout``, checked; a reduction stores every kept axis (``full``)."""
    from limits.sweep.blocks import LAYOUTS

    layout = cfg.store.get("layout", "lean")
    if layout not in LAYOUTS:
        raise SweepError(
            f"store.layout = {layout!r}; allowed: lean (each output over the axes it "
            f"depends on), full (every output over every axis)"
        )
    return "full" if reduction is not None else str(layout)


def _dtype(cfg: DictConfig) -> Any:
    if cfg.precision not in ("float32", "float64"):
        raise SweepError(f"precision = {cfg.precision!r}; allowed: float32, float64")
    return np.dtype(cfg.precision)


def _precision_scope(dtype: np.dtype) -> contextlib.AbstractContextManager:
    """64-bit JAX for a float64 sweep, for this sweep only (the process setting is left as
    it was: a library call never switches global state)."""
    import jax

    if dtype == np.float64 and not jax.config.jax_enable_x64:  # type: ignore[attr-defined]
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def _store_path(cfg: DictConfig) -> Path:
    if cfg.store.path:
        return Path(str(cfg.store.path)).expanduser()
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir) / STORE_NAME
    except ValueError:  # no Hydra run (plain compose): the caller must say where
        raise SweepError(
            "store.path is not set and there is no Hydra output dir; pass store.path=PATH"
        ) from None


def _overrides(cfg: DictConfig, given: Sequence[str] | None) -> list[str]:
    if given is not None:
        return without_axis_resets(given)
    try:
        from hydra.core.hydra_config import HydraConfig

        return without_axis_resets(HydraConfig.get().overrides.task)
    except ValueError:
        return []


def _human_bytes(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _shard(cfg: DictConfig) -> tuple[int, int]:
    """``(shard.index, shard.count)``, checked; several shards need one shared store.path."""
    index, count = cfg.shard.index, cfg.shard.count
    for name, value, lo in (("shard.count", count, 1), ("shard.index", index, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise SweepError(f"{name} = {value!r} must be a whole number >= {lo}")
    if index >= count:
        raise SweepError(f"shard.index = {index} must be in [0, shard.count = {count})")
    if count > 1 and not cfg.store.path:
        raise SweepError(
            f"shard.count = {count} needs store.path=PATH: every shard writes its "
            f"blocks into that one store"
        )
    return index, count


def _devices(cfg: DictConfig) -> tuple[Any, ...]:
    from limits.sweep.devices import DeviceError, select_devices

    try:
        return select_devices(cfg.devices)
    except DeviceError as err:
        raise SweepError(str(err)) from None


def _check_size(
    cfg: DictConfig, sizes: Mapping[str, int], bytes_per_point: int, stored: int | None = None
) -> None:
    """Refuse grids above ``limits.max_points`` points or ``limits.max_bytes`` (uncompressed,
    at most ``bytes_per_point`` per stored point; ``stored``: points kept after a reduction,
    default all), before anything is traced or compiled. ``sizes``: axis -> length."""
    points = math.prod(sizes.values())
    stored = points if stored is None else stored
    max_points = float(parse_quantity(cfg.limits.max_points, "1", "limits.max_points"))
    max_bytes = float(parse_quantity(cfg.limits.max_bytes, "B", "limits.max_bytes"))
    est_bytes = stored * bytes_per_point
    if points <= max_points and est_bytes <= max_bytes:
        return
    what = (
        f"{points:,} points, more than limits.max_points = {max_points:,.0f}"
        if points > max_points
        else f"up to {_human_bytes(est_bytes)} uncompressed ({stored:,} points x "
        f"{bytes_per_point} B), more than limits.max_bytes = {_human_bytes(max_bytes)}"
    )
    if sizes:
        biggest = max(sizes, key=lambda a: sizes[a])
        shrink = f"shrink an axis (largest: grid.{biggest} with {sizes[biggest]} values), "
    else:  # a single point: only the limit can be wrong
        shrink = ""
    raise SweepError(
        f"grid has {what}; {shrink}store fewer variables "
        f"(store.variables=[utps,stps,...]) or raise the limit"
    )


@contextlib.contextmanager
def _store_io(path: Path) -> Iterator[None]:
    """Turn an operating-system error on the store (no space, no permission...) into a
    one-line ``StoreError`` naming the store and the cause."""
    try:
        yield
    except OSError as err:
        cause = os.strerror(err.errno) if err.errno else str(err)
        raise StoreError(
            f"cannot write store {path}: {cause} ({type(err).__name__}"
            f"{': ' + err.filename if err.filename else ''}); blocks marked done "
            f"are kept: fix the cause and re-run the same command to resume"
        ) from err


def _units() -> dict[str, str]:
    return {name: units for name, (units, _) in OUTPUTS.items()}


def _band_outputs(variables: Sequence[str], band: Any) -> tuple[str, ...]:
    from limits.sweep.blocks import band_outputs

    return band_outputs(variables) if band is not None else ()


def _ideal_and_band(cfg: DictConfig, base: Params, grid: Grid) -> tuple[Params, Any]:
    """With a fitted profile (``calibration=<name>`` with a ``covariance``): the ideal limit's
    ``base`` (the fitted parameters at their defaults; the stored outputs stay limits) and
    the ``Band`` for the block function (``<output>_expected`` and ``_band``); else
    ``(base, None)``."""
    found = calibration_band(cfg)
    if found is None:
        return base, None
    names, matrix = found
    swept = [n for n in names if n in grid.names]
    if swept:
        raise ParameterError(
            f"grid axis {swept[0]} is a fitted parameter of the calibration profile; sweep it "
            "without calibration=... or drop the axis"
        )
    values = tuple(float(getattr(base.calibration, n)) for n in names)
    ideal = base.replace(**{n: getattr(Calibration(), n) for n in names})
    return ideal, (names, values, tuple(tuple(float(v) for v in row) for row in matrix))


def _stored_spec(
    name: str,
    dtype: np.dtype,
    extra: tuple[int, ...],
    axis_attrs: Mapping[str, Mapping[str, Any]],
    reduced: bool,
    dims: tuple[str, ...] | None = None,
) -> VariableSpec:
    """How a block function output is stored: name, dtype, dims after the axes, attrs."""
    if name.startswith(INDEX_PREFIX):  # becomes the chosen coordinate value on the host
        axis = name.removeprefix(INDEX_PREFIX)
        attrs = {
            "units": axis_attrs[axis]["units"],
            "long_name": f"{axis_attrs[axis]['long_name']} at the best point (reduce); "
            f"NaN where none was valid",
        }
        return VariableSpec(BEST_PREFIX + axis, np.dtype(np.float64), attrs=attrs, dims=dims)
    if name == FOUND:
        return VariableSpec(
            name,
            dtype,
            attrs={"units": "1", "long_name": "some point met the reduce constraints"},
            dims=dims,
        )
    stem, _, kind = name.rpartition("_")
    if kind in ("expected", "band") and stem in OUTPUTS:  # a fitted profile's figures
        units, long_name = OUTPUTS[stem]
        text = (
            "expected (calibrated) "
            if kind == "expected"
            else "one-sigma band (parameter covariance) of the expected "
        )
        return VariableSpec(
            name, dtype, attrs={"units": units, "long_name": text + long_name}, dims=dims
        )
    if name in OUTPUTS:
        attrs = output_attrs(name)
        if reduced and name in BOUND_OUTPUTS:  # -1: no valid point (limits.sweep.reduce)
            attrs["flag_values"] = [-1, *attrs["flag_values"]]
            attrs["flag_meanings"] = "none " + attrs["flag_meanings"]
    else:
        attrs = {
            "units": "1",
            "long_name": f"elasticity of {name.removeprefix('elasticity_')} "
            f"with respect to each parameter in wrt "
            f"(d ln y / d ln x)",
        }
    return VariableSpec(name, dtype, ("wrt",) if extra else (), extra, attrs, dims)


def _recompute_damaged(
    path: Path, done: np.ndarray, blocks: Sequence[tuple[int, ...]]
) -> np.ndarray:
    """``done`` without the blocks marked written whose chunks are missing or fail their
    checksum (they are computed again); says which files, on stderr."""
    from limits.sweep.integrity import damaged_blocks, describe_damage

    written = [b for b in blocks if done[b]]
    if not written:
        return done
    with _store_io(path):
        damaged = damaged_blocks(path, written)
    if damaged:
        _say(
            f"limits.sweep: {describe_damage(path, damaged)}; recomputing them now",
            level=logging.WARNING,
        )
        done = done.copy()
        for block in damaged:
            done[block] = False
    return done


# --------------------------------------------------------------------------- summary


class _Summary:
    """Running headline numbers over written blocks: best utps / stps among feasible points
    (with where they are; after a reduction also the chosen best_<axis> values) and the
    fraction of feasible points (of the stored points)."""

    def __init__(self, axes: Mapping[str, np.ndarray]) -> None:
        self.axes = axes
        self.points = 0
        self.feasible = 0
        self.best: dict[str, tuple[float, dict[str, float]]] = {}

    def add(
        self,
        region: tuple[slice, ...],
        data: Mapping[str, np.ndarray],
        block_shape: tuple[int, ...] | None = None,
    ) -> None:
        """Count the block's points over ``region``. ``data``: its stored values (over every
        stored axis); with ``block_shape`` (the padded block's), also the per-block headline
        outputs computed on the device (``limits.sweep.blocks.headlines``), else the best
        values are found here."""
        n = math.prod(s.stop - s.start for s in region)
        self.points += n
        mask = np.asarray(data["feasible"], bool) if "feasible" in data else None
        if mask is not None:
            self.feasible += int(np.count_nonzero(mask))
        for name in ("utps", "stps"):
            if name not in data:
                continue
            if block_shape is not None:  # found on the device in the block's compiled pass
                top = data[f"{HEADLINE_PREFIX}{name}"][()]
                flat = int(data[f"{HEADLINE_PREFIX}{name}_at"])
                i = np.unravel_index(flat, block_shape) if np.isfinite(top) else ()
            else:  # a resumed block, read back: a few passes in the stored dtype
                values = np.asarray(data[name])
                candidates = values if mask is None else np.where(mask, values, np.nan)
                if candidates.size == 0:
                    continue
                top = np.fmax.reduce(candidates, axis=None)  # NaN: none feasible (or valid)
                i = np.unravel_index(int(np.argmax(candidates == top)), candidates.shape)
            if not np.isfinite(top):  # ignored; the first point of the largest value wins
                continue
            if name not in self.best or float(top) > self.best[name][0]:
                at = {a: float(self.axes[a][s.start + k]) for a, s, k in zip(self.axes, region, i)}
                at.update(
                    {
                        k.removeprefix(BEST_PREFIX): float(np.asarray(v)[i])
                        for k, v in data.items()
                        if k.startswith(BEST_PREFIX)
                    }
                )
                self.best[name] = (float(top), at)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"points": self.points}
        if self.points and self.feasible is not None:
            out["fraction_feasible"] = self.feasible / self.points
        for name, (value, at) in self.best.items():
            out[f"best_{name}"] = value
            out[f"best_{name}_at"] = at  # with a reduction: also the best reduced axes
        return out

    def lines(self, has_feasible: bool) -> list[str]:
        d = self.as_dict()
        lines = []
        for name in ("utps", "stps"):
            if f"best_{name}" in d:
                at = ", ".join(f"{a}={_fmt_axis(a, v)}" for a, v in d[f"best_{name}_at"].items())
                lines.append(
                    f"  best {name}: {d[f'best_{name}']:.4g} {OUTPUTS[name][0]}"
                    + (" (feasible points)" if has_feasible else "")
                    + (f" at {at}" if at else "")
                )
        if has_feasible and "fraction_feasible" in d:
            lines.append(f"  feasible: {100 * d['fraction_feasible']:.1f} % of points")
        return lines


def _expand(values: Any, axes: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """``values`` stored over the axes at positions ``axes`` as a read-only view over every
    axis of ``shape`` (lean layout; no copy)."""
    values = np.asarray(values)
    if len(axes) == len(shape):
        return values
    ones = [shape[i] if i in axes else 1 for i in range(len(shape))]
    return np.broadcast_to(values.reshape(ones), shape)


def _fmt_axis(name: str, value: float) -> str:
    spec = parameter_index()[name][1]
    if spec.integer or spec.unit in ("1", "tok"):
        return f"{value:g}"
    return format_quantity(value, spec.unit).replace(" ", "")


# --------------------------------------------------------------------------- the job


def run(
    cfg: DictConfig,
    *,
    overrides: Sequence[str] | None = None,
    block_callback: Callable[[tuple[int, ...]], None] | None = None,
    verbose: bool = True,
) -> SweepResult:
    """Run one sweep described by a composed config.

    **Arguments:** ``cfg``: config composed from ``conf/config.yaml`` (``store.path`` must be
    set outside a Hydra run); ``overrides``: recorded in the provenance (default: Hydra's);
    ``block_callback(block)``: called after each block is written and marked done (a test
    hook: raising from it simulates an interruption); ``verbose``: print progress and summary.

    **Returns:** a ``SweepResult``. User mistakes raise ``ParameterError``/``UnitError``/
    ``StoreError`` with a one-line message naming the setting.
    """
    t0 = time.perf_counter()
    from omegaconf.errors import OmegaConfBaseException

    cfg = cfg.copy()
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as err:  # e.g. ${missing.key}: name the setting, one line
        key = _unresolvable(cfg) or "config"
        raise ParameterError(f"{key}: {str(err).splitlines()[0]}") from None
    check_known_keys(cfg)
    dtype = _dtype(cfg)
    with _precision_scope(dtype):
        return _run(cfg, dtype, t0, overrides, block_callback, verbose)


@dataclasses.dataclass
class _Job:
    """What one sweep job evaluates and where it goes, checked before anything is written."""

    cfg: DictConfig
    dtype: np.dtype
    base: Params
    grid: Grid
    plan: Any  # limits.sweep.engine.BlockPlan
    fn: Any  # limits.sweep.blocks.BlockFunction
    reduction: Reduction | None
    layout: StoreLayout
    path: Path
    shard_index: int
    shard_count: int
    traces_before: int  # the block function's traces before this job (one compile per job)
    warnings: list[str]  # said before the sweep starts (an axis that changes nothing, ...)
    axes: dict[str, tuple[int, ...]]  # output -> positions of its stored axes (lean layout)

    @property
    def stored_points(self) -> int:
        return math.prod(len(v) for v in self.layout.axes.values())


def _plan(cfg: DictConfig, dtype: np.dtype) -> _Job:
    """Validate every setting, build the grid, the block plan, the compiled block function and
    the store layout (tracing only; nothing is written)."""
    from limits.sweep.blocks import BlockFunction
    from limits.sweep.engine import BlockPlan, cast_params

    base = params_from_cfg(cfg)
    grid_spec = mapping(cfg.grid)
    _check_size(cfg, axis_lengths(grid_spec), 0)  # points, before any axis is built
    grid = parse_grid(grid_spec)
    validate_grid(base, grid)
    variables = _variables(cfg)
    base, band = _ideal_and_band(cfg, base, grid)
    metrics, wrt = _sensitivity(cfg)
    shard_index, shard_count = _shard(cfg)
    devices = _devices(cfg)
    reduction = _reduction(cfg, grid)
    chunks = _resumed_chunks(cfg, grid, reduction, _chunks(cfg, grid, reduction))
    codec_for(str(cfg.store.codec), cfg.store.clevel)  # validate early
    layout_name = _layout(cfg, reduction)
    plan = BlockPlan(grid.axes, chunks, reduction.over if reduction else ())
    stored_axes = {n: grid.coord(n) for n in plan.stored_names}
    # size check before any tracing: at most one dtype-sized number per stored value (plus a
    # best_<axis> and reduce_found per stored point of a reduction)
    _check_size(
        cfg,
        {n: len(v) for n, v in grid.axes.items()},
        dtype.itemsize
        * (len(variables) + 2 * len(_band_outputs(variables, band)) + len(metrics) * len(wrt))
        + (9 * len(reduction.over) + 1 if reduction else 0),
        math.prod(len(v) for v in stored_axes.values()),
    )
    fn = BlockFunction.cached(
        grid.names, chunks, variables, metrics, wrt, devices, reduction, layout_name, True, band
    )
    traces_before = fn.traces
    base_cast = cast_params(base, dtype)
    shapes = fn.output_shapes(base_cast, dtype)
    out_axes = fn.output_axes(base_cast)
    axis_attrs = {n: {"units": grid.units(n), "long_name": grid.long_name(n)} for n in grid.names}
    specs = [
        _stored_spec(
            name,
            np.dtype(sd.dtype),
            tuple(sd.shape[len(out_axes[name]) :]),
            axis_attrs,
            reduction is not None,
            tuple(plan.stored_names[i] for i in out_axes[name]),
        )
        for name, sd in shapes.items()
        if not name.startswith(HEADLINE_PREFIX)  # per-block headlines: never stored
    ]
    layout = StoreLayout(
        axes=stored_axes,
        axis_attrs={n: axis_attrs[n] for n in stored_axes},
        chunks=plan.stored_chunks,
        variables=tuple(specs),
        extra_coords={"wrt": np.array(wrt, dtype=object)} if metrics else {},
        codec=str(cfg.store.codec),
        clevel=cfg.store.clevel,
    )
    return _Job(
        cfg=cfg,
        dtype=dtype,
        base=base_cast,
        grid=grid,
        plan=plan,
        fn=fn,
        reduction=reduction,
        layout=layout,
        path=_store_path(cfg),
        shard_index=shard_index,
        shard_count=shard_count,
        traces_before=traces_before,
        warnings=_unused_axes(fn, base, base_cast, grid),
        axes=out_axes,
    )


#: each latency of ``limits.model.sync.latencies_paid``: why no point of a grid pays it
_UNPAID_BECAUSE = {
    "sync_latency": "every collective stays inside a node (tp, ep <= node_size: "
    "limits.model.sync.leaves_node) or a scale-up domain (<= scaleup_size)",
    "sync_latency_intra_node": "every collective group leaves its node or is one chip",
    "sync_latency_scaleup": "no collective spans a scale-up domain beyond one node",
    "pipeline_latency": "pp = 1 (no pipeline hops)",
}


def _idle_axes(base: Params, grid: Grid) -> list[str]:
    """One line per latency axis that no point of the grid pays (``limits.model.sync.
    latencies_paid``): its values change no output, so the axis only multiplies the work."""
    from limits.model.sync import latencies_paid

    swept = [n for n in grid.names if len(grid.axes[n]) > 1]
    if not any(n in _UNPAID_BECAUSE for n in swept):
        return []  # no latency swept: nothing to evaluate (eager JAX, ~0.2 s of start-up)
    paid = latencies_paid(base.replace(**broadcast_axes(grid.names, list(grid.axes.values()))))
    idle = [n for n in swept if n in paid and not bool(np.any(np.asarray(paid[n])))]

    flat = base.flat()

    def values(name: str) -> str:
        v = grid.axes[name] if name in grid.axes else np.asarray(flat[name])
        return ", ".join(f"{x:g}" for x in np.unique(v))

    return [
        f"grid.{n} changes no output: {_UNPAID_BECAUSE[n]} at every point (tp: {values('tp')}; ep: "
        f"{values('ep')}; node_size: {values('node_size')}; scaleup_size: "
        f"{values('scaleup_size')}); its {len(grid.axes[n])} values give identical results"
        for n in idle
    ]


def _unused_axes(fn: Any, base: Params, cast: Params, grid: Grid) -> list[str]:
    """One line per axis whose values cannot change any stored output: a latency no point
    pays (``_idle_axes``), or a parameter no stored output is computed from
    (``BlockFunction.idle_axes``: e.g. ``chip_price`` when no cost is stored)."""
    lines = _idle_axes(base, grid)
    named = {line.split()[0] for line in lines}
    return lines + [
        f"grid.{n} changes no stored output (none of the stored variables is computed from "
        f"{n}); its {len(grid.axes[n])} values give identical results: store one that is "
        f"(store.variables=all) or drop the axis"
        for n in fn.idle_axes(cast)
        if len(grid.axes[n]) > 1 and f"grid.{n}" not in named
    ]


def _announce(job: _Job) -> None:
    """The sweep's first lines: size, blocks, precision, devices, reduction."""
    grid, plan = job.grid, job.plan
    dims = " x ".join(f"{n}[{len(v)}]" for n, v in grid.axes.items()) or "a single point"
    device = job.fn.sharding.devices[0]
    where = f"{device.platform} ({getattr(device, 'device_kind', '?')})"
    _say(
        f"limits.sweep: {grid.size:,} points ({dims}), {len(job.layout.variables)} variables, "
        f"~{_human_bytes(job.layout.stored_bytes)} uncompressed, "
        f"{math.prod(plan.n_blocks)} blocks of {math.prod(plan.chunks):,} points, "
        f"{job.dtype.name}, {job.fn.sharding.n_devices} device(s): {where}"
    )
    if job.reduction is not None:
        _say(
            f"limits.sweep: reduction: {job.reduction.describe(_units())}; stores "
            f"{job.stored_points:,} points"
        )
    for line in job.warnings:
        _say(f"limits.sweep: warning: {line}", level=logging.WARNING)


def _open_store(job: _Job, overrides: Sequence[str] | None) -> Any:
    """Create the store (first writer wins the atomic rename) or open it to resume; refuse a
    store written with other settings or other model code."""
    cfg, path = job.cfg, job.path
    data_config = _data_config(cfg)
    with _store_io(path):
        if not path.exists():  # shards race here: the atomic rename lets exactly one win
            attrs = provenance(OmegaConf.to_yaml(cfg), _overrides(cfg, overrides), data_config)
            if job.reduction is not None:
                attrs["reduction"] = job.reduction.describe(_units())
            attrs[INTEGRITY_ATTR] = INTEGRITY  # checksums (codec_for), every chunk written
            attrs[SOURCE_HASH_ATTR] = source_hash()  # resume refuses other model code
            create_store(path, job.layout, attrs)
        check_metadata(path)  # a damaged zarr.json is named, not a JSON traceback
        group = open_store_group(path)
    check_same_config(group, path, data_config)
    note = check_same_code(group.attrs, path)
    if note:
        _say(f"limits.sweep: note: {note}", level=logging.WARNING)
    return group


def _progress_bar(job: _Job, todo: list) -> Any:
    """A tqdm bar over the points still to compute."""
    from tqdm import tqdm

    return tqdm(
        total=sum(job.plan.points(b) for b in todo),
        unit="pt",
        unit_scale=True,
        desc="sweep",
        file=sys.stderr,
        dynamic_ncols=True,
    )


def _report(job: _Job, result: SweepResult, summary: _Summary, computed_points: int) -> None:
    """The closing lines: where the store is, how fast, the headline numbers, what next."""
    rate = computed_points / result.seconds if result.seconds > 0 else float("nan")
    shard = f" (shard {job.shard_index} of {job.shard_count})" if job.shard_count > 1 else ""
    _say(
        f"limits.sweep: wrote {job.path}{shard} in {result.seconds:.2f} s "
        f"({result.blocks_computed} blocks computed, {result.blocks_skipped} reused, "
        f"{rate / 1e6:.3g} M points/s)"
    )
    has_feasible = any(s.name == "feasible" for s in job.layout.variables)
    for line in summary.lines(has_feasible):
        _say(line)
    _say(f"  open with: limits.analysis.open_results({str(job.path)!r})")
    _say(
        f"  next: python -m limits.query best --store {job.path}; "
        f"python -m limits.explore {job.path}"
    )


class _StoreOpening:
    """The store of a job, created or opened (``_open_store``). A store that does not exist
    yet is created in a background thread while the first blocks compute (its template costs
    0.1-0.2 s of zarr calls, which kept both cores idle at the start of every sweep); the
    first block's writes wait for it, and an error creating it is raised there."""

    def __init__(self, job: _Job, overrides: Sequence[str] | None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.job = job
        self.fresh = not job.path.exists()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="limits-store")
        self._group = self._pool.submit(_open_store, job, overrides)
        self._arrays: dict[str, Any] | None = None
        self._progress: Any = None
        self._writer: ChunkWriter | None = None

    def group(self) -> Any:
        """The store's zarr group (waits for its creation; raises what creating it raised)."""
        return self._group.result()

    def arrays(self) -> dict[str, Any]:
        """Its data arrays, each writing every chunk, even one equal to the fill value (a
        missing chunk file is damage)."""
        if self._arrays is None:
            group = self.group()
            self._arrays = {
                s.name: group[s.name].with_config({"write_empty_chunks": True})
                for s in self.job.layout.variables
            }
        return self._arrays

    def progress(self) -> Any:
        """Its completeness record (``PROGRESS_ARRAY``), opened once."""
        if self._progress is None:
            self._progress = self.group()[PROGRESS_ARRAY]
        return self._progress

    def writer(self) -> ChunkWriter:
        """The chunk writer of its arrays (made on first use)."""
        if self._writer is None:
            self._writer = ChunkWriter(self.job.path, self.arrays())
        return self._writer

    def close(self) -> None:
        """Wait for the writes and the creation to end (errors are raised where they are
        used, not here)."""
        if self._writer is not None:
            self._writer.close()
        self._pool.shutdown(wait=True)


def _run(
    cfg: DictConfig,
    dtype: np.dtype,
    t0: float,
    overrides: Sequence[str] | None,
    block_callback: Callable[[tuple[int, ...]], None] | None,
    verbose: bool,
) -> SweepResult:
    from limits.sweep.engine import run_blocks

    job = _plan(cfg, dtype)
    if verbose:
        _announce(job)
    plan = job.plan
    all_blocks = [b for k, b in enumerate(plan.blocks()) if k % job.shard_count == job.shard_index]
    opening = _StoreOpening(job, overrides)
    if opening.fresh:  # nothing to resume: every block of this job is to compute
        done = np.zeros(job.layout.n_blocks, dtype=bool)
    else:
        group = opening.group()
        done = _recompute_damaged(
            job.path, done_mask(group), [plan.stored_block(b) for b in all_blocks]
        )
    todo = [b for b in all_blocks if not done[plan.stored_block(b)]]
    if todo and not opening.fresh:  # chunk files a killed run left half-written (hidden)
        remove_partial_files(job.path)
    skipped = [b for b in all_blocks if done[plan.stored_block(b)]]
    summary = _Summary(job.layout.axes)
    names = [s.name for s in job.layout.variables]
    summary_vars = [
        v for v in names if v in ("utps", "stps", "feasible") or v.startswith(BEST_PREFIX)
    ]
    axes = {s.name: job.axes.get(s.name, ()) for s in job.layout.variables}
    headline_keys = {k for k in job.axes if k.startswith(HEADLINE_PREFIX)}
    axes.update({BEST_PREFIX + k.removeprefix(INDEX_PREFIX): v for k, v in job.axes.items()})

    def own(region: tuple[slice, ...], name: str) -> tuple[slice, ...]:
        return tuple(region[i] for i in axes[name])

    def whole(region: tuple[slice, ...], data: Mapping[str, np.ndarray]) -> dict:
        """The summary's variables over every stored axis of the block (broadcast views)."""
        shape = tuple(s.stop - s.start for s in region)
        return {v: _expand(data[v], axes[v], shape) for v in summary_vars if v in data}

    for b in skipped:  # resumed: headline numbers of blocks written before
        region = plan.stored_region(b)
        arrays = opening.arrays()
        summary.add(region, whole(region, {v: arrays[v][own(region, v)] for v in summary_vars}))
    if verbose and skipped:  # with or without the bar: limits.progress=false hides only the bar
        _say(
            f"limits.sweep: resuming {job.path}: {len(skipped)} of {len(all_blocks)} blocks "
            "already written"
        )
    bar = _progress_bar(job, todo) if verbose and cfg.limits.progress and todo else None

    def sink(block: tuple[int, ...], data: dict[str, np.ndarray]) -> None:
        region = plan.stored_region(block)
        if job.reduction is not None:
            data = finish_host(data, job.grid.axes)
        # a variable over fewer axes is written by the one block that owns its chunk
        mine = {k: v for k, v in data.items() if k in names and plan.owns(block, axes[k])}
        in_flight.append((block, opening.writer().submit({k: own(region, k) for k in mine}, mine)))
        summary.add(  # while its chunks are encoded
            region,
            {**whole(region, data), **{k: v for k, v in data.items() if k in headline_keys}},
            plan.stored_chunks,
        )
        while len(in_flight) > 1:  # the block before: marked done once its files are written
            finish(*in_flight.pop(0))

    def finish(block: tuple[int, ...], written: Callable[[], None]) -> None:
        written()
        mark_done(opening.progress(), plan.stored_block(block))
        if bar is not None:
            bar.update(plan.points(block))
        if block_callback is not None:
            block_callback(block)

    in_flight: list[tuple[tuple[int, ...], Callable[[], None]]] = []
    try:
        with _store_io(job.path):
            run_blocks(job.fn, job.base, plan, todo, dtype, sink, axes=job.axes)
            while in_flight:  # after an error the block in flight is not marked: recomputed
                finish(*in_flight.pop(0))
            opening.group()  # created even where this job had no block to compute
    finally:
        opening.close()
        if bar is not None:
            bar.close()
    result = SweepResult(
        job.path,
        job.grid.size,
        len(all_blocks),
        len(todo),
        len(skipped),
        job.fn.traces - job.traces_before,
        time.perf_counter() - t0,
        summary.as_dict(),
    )
    if verbose:
        _report(job, result, summary, sum(plan.points(b) for b in todo))
    return result


def compose(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """The config ``python -m limits.sweep`` would use, composed without running Hydra."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=replaceable_axes(overrides))


def run_overrides(overrides: list[str], config_name: str = "config", **kw: Any) -> Path:
    """Compose with ``overrides`` (which must include ``store.path=...``), run, return the
    store path. For notebooks and other tools."""
    cfg = compose(overrides, config_name)
    return run(cfg, overrides=overrides, **kw).path


#: file in a multirun job's directory recording why the job failed (read by the callback)
FAILURE_FILE = "limits_failed.txt"


def _multirun_job_dir() -> Path | None:
    """This job's output directory when it is one job of a multirun, else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:
        return None
    return Path(hydra_cfg.runtime.output_dir) if hydra_cfg.mode == RunMode.MULTIRUN else None


def _record_failure(job_dir: Path, message: str) -> None:
    from hydra.core.hydra_config import HydraConfig

    overrides = " ".join(without_axis_resets(HydraConfig.get().overrides.task))
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / FAILURE_FILE).write_text(f"{overrides}\n{message}\n")


def _task(cfg: DictConfig) -> None:
    logging.getLogger("jax").setLevel(logging.WARNING)  # Hydra sets the root logger to INFO
    if cfg.shard.count != 1:  # shards may share a GPU: allocate as needed (before JAX starts)
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    job_dir = _multirun_job_dir()
    if job_dir is not None:  # a re-run of this job: forget its earlier failure
        (job_dir / FAILURE_FILE).unlink(missing_ok=True)
    from limits.compile_cache import enable_compilation_cache

    enable_compilation_cache(bool(cfg.limits.compilation_cache))  # an entry point: this process
    try:
        run(cfg)
    except USER_ERRORS as err:
        _say(f"limits.sweep: error: {err}", level=logging.ERROR)
        if job_dir is None:
            sys.exit(2)
        _record_failure(job_dir, str(err))  # the other jobs go on; reported at the end
    except Exception as err:  # a bug: full traceback, but the other jobs of a multirun go on
        if job_dir is None:
            raise
        import traceback

        traceback.print_exc()
        _record_failure(job_dir, f"{type(err).__name__}: {err} (traceback printed above)")
    except KeyboardInterrupt:
        _say("limits.sweep: interrupted; re-run the same command to resume", level=logging.ERROR)
        sys.exit(130)


#: command-line options that bring configs from elsewhere (which could set ``hydra.mode``)
_OTHER_CONFIG_ARGS = ("-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir")


@contextlib.contextmanager
def _compose_once() -> Iterator[None]:
    """Compose the config once per run instead of twice. Before composing the job's config,
    Hydra composes it once more only to read ``hydra.mode`` (``Hydra.get_mode``; ~0.1 s).
    This config tree never sets ``hydra.mode`` (``tests/test_sweep.py`` checks), so unless an
    override names it or another config is given, that answer is known: ``None`` (run or
    multirun as the command line says), which is what Hydra returns then."""
    from hydra._internal.hydra import Hydra

    original = Hydra.get_mode

    def get_mode(self: Any, config_name: str | None, overrides: list[str]) -> Any:
        if (
            config_name == "config"
            and not any(a.split("=")[0] in _OTHER_CONFIG_ARGS for a in sys.argv[1:])
            and not any("hydra.mode" in o or "hydra/" in o for o in overrides)
        ):
            return None
        return original(self, config_name, overrides)

    Hydra.get_mode = get_mode  # type: ignore[method-assign]
    try:
        yield
    finally:
        Hydra.get_mode = original  # type: ignore[method-assign]


def main() -> None:
    """Entry point of ``python -m limits.sweep`` and the ``limits-sweep`` console script.

    Hydra's own errors (unknown preset or key, bad override syntax) end like the engine's:
    one line ``limits.sweep: error: ...`` and exit status 2 (``HYDRA_FULL_ERROR=1`` keeps
    Hydra's full report)."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from limits.cli import entry_point
    from limits.sweep.config import config_error_line

    entry_point()
    sys.argv[1:] = replaceable_axes(sys.argv[1:])  # a range may replace a list axis and back
    full = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let Hydra's errors reach us instead of printing
    try:
        with _compose_once():
            hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_task)()
    except (HydraException, OmegaConfBaseException) as err:
        if full:
            raise
        print(f"limits.sweep: error: {config_error_line(err)}", file=sys.stderr, flush=True)
        sys.exit(2)
    finally:
        if full is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)


if __name__ == "__main__":
    main()
