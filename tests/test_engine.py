"""Blocked evaluation: equals whole-grid evaluation (padding included), one compile."""

import logging

import jax
import numpy as np
import pytest

import limits
from limits.sweep.blocks import BlockFunction
from limits.sweep.engine import BlockPlan, cast_params, run_blocks
from limits.sweep.grid import broadcast_axes, parse_grid

VARIABLES = ("utps", "stps", "feasible", "bound", "ttft", "memory_required")


def _setup(chunks):
    base = limits.load_params("xpu_hbm3", "llama3_405b", weight_bytes=1, kv_bytes=1)
    grid = parse_grid(
        {"tp": [8, 16, 32], "context": [1024, 4096, 16384, 65536, 131072], "batch": [1, 2, 4, 8]}
    )
    return base, grid, BlockPlan(grid.axes, chunks)


def _blocked(base, plan, dtype):
    fn = BlockFunction(plan.names, plan.chunks, VARIABLES)
    out = {k: np.full(plan.shape, -1, dtype=np.float64) for k in VARIABLES}
    order = []

    def sink(block, data):
        order.append(block)
        for k, v in data.items():
            out[k][plan.region(block)] = v

    run_blocks(fn, cast_params(base, dtype), plan, list(plan.blocks()), dtype, sink)
    return out, fn, order


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocked_equals_whole_grid_with_padded_edges(dtype):
    base, grid, plan = _setup((2, 2, 3))  # no axis length is a multiple of its chunk
    out, fn, order = _blocked(base, plan, dtype)
    assert order == list(plan.blocks())  # the writer sees blocks in dispatch order
    whole_params = cast_params(base, dtype).replace(
        **broadcast_axes(grid.names, [v.astype(dtype) for v in grid.axes.values()])
    )
    whole = jax.jit(limits.evaluate)(whole_params)
    for k in VARIABLES:
        expected = np.broadcast_to(np.asarray(whole[k], dtype=np.float64), grid.shape)
        np.testing.assert_array_equal(out[k], expected, err_msg=k)


def test_exactly_one_compile_per_sweep(caplog):
    base, grid, plan = _setup((2, 2, 3))
    assert np.prod(plan.n_blocks) == 2 * 3 * 2
    with jax.log_compiles(True), caplog.at_level(logging.WARNING, logger="jax"):
        _, fn, _ = _blocked(base, plan, np.float32)
    assert fn.traces == 1
    compiles = [
        r for r in caplog.records if "Compiling" in r.getMessage() and "_fn" in r.getMessage()
    ]
    assert len(compiles) == 1, [r.getMessage() for r in compiles]


def test_float32_outputs_keep_float32():
    base, grid, plan = _setup((3, 5, 4))
    fn = BlockFunction(plan.names, plan.chunks, VARIABLES)
    out = fn(cast_params(base, np.float32), plan.axis_values((0, 0, 0), np.float32))
    assert out["utps"].dtype == np.float32 and out["bound"].dtype == np.int8
    assert out["feasible"].dtype == np.bool_ and out["utps"].shape == (3, 5, 4)


def test_sink_error_stops_the_sweep_after_finishing_queued_blocks():
    base, grid, plan = _setup((1, 5, 4))
    fn = BlockFunction(plan.names, plan.chunks, ("utps",))
    seen = []

    def sink(block, data):
        seen.append(block)
        if len(seen) == 2:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        run_blocks(fn, cast_params(base, np.float32), plan, list(plan.blocks()), np.float32, sink)
    assert len(seen) == 2


def test_padding_repeats_the_edge_value():
    plan = BlockPlan({"a": np.arange(5.0)}, (2,))
    assert plan.n_blocks == (3,)
    np.testing.assert_array_equal(plan.axis_values((2,), np.float64), [[4.0, 4.0]])
    assert plan.region((2,)) == (slice(4, 5),) and plan.crop((2,)) == (slice(0, 1),)
