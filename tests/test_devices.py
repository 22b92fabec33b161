"""Several devices: a block spread over the two forced CPU devices (conftest) gives exactly the
one-device result, with one compile per sweep."""

import jax
import numpy as np
import pytest
import xarray as xr

import limits
from limits.model.outputs import DEFAULT_OUTPUTS
from limits.sweep import SweepError, compose, run
from limits.sweep.blocks import BlockFunction
from limits.sweep.devices import block_sharding, select_devices
from limits.sweep.engine import BlockPlan, cast_params

GRID = [
    "grid=point",
    "++grid.tp=[8,16,32]",
    "++grid.context=[1024,4096,16384,131072]",
    "++grid.batch=[1,2,4,8,16,32]",
    "store.chunk_points=24",
    "store.variables=all",
]


def test_two_forced_cpu_devices_are_there():
    assert len(jax.local_devices()) == 2


def test_sharding_picks_the_largest_divisible_axis_or_falls_back():
    two = jax.local_devices()[:2]
    assert block_sharding((3, 4, 6), two).axis == 2
    assert block_sharding((3, 8, 6), two).axis == 1
    assert block_sharding((3, 5, 7), two).axis is None  # nothing divides: one device
    assert block_sharding((3, 4, 6), two[:1]).axis is None
    assert block_sharding((), two).axis is None


def test_block_outputs_live_on_both_devices():
    base = limits.load_params("xpu_hbm3", "llama3_405b", weight_bytes=1, kv_bytes=1)
    plan = BlockPlan({"tp": np.array([8.0, 16.0, 32.0]), "batch": np.arange(1.0, 9.0)}, (3, 8))
    fn = BlockFunction(plan.names, plan.chunks, ("utps", "bound"), devices=jax.local_devices())
    out = fn(cast_params(base, np.float32), plan.axis_values((0, 0), np.float32))
    assert len(out["utps"].sharding.device_set) == 2
    assert [s.data.shape for s in out["utps"].addressable_shards] == [(3, 4), (3, 4)]


@pytest.mark.slow
def test_all_devices_equal_one_device_exactly_with_one_compile(tmp_path):
    one = run(compose(GRID + ["devices=1", f"store.path={tmp_path / 'one.zarr'}"]), verbose=False)
    both = run(
        compose(GRID + ["devices=all", f"store.path={tmp_path / 'all.zarr'}"]), verbose=False
    )
    assert both.blocks_computed == one.blocks_computed > 1
    assert both.traces == 1 and one.traces == 1  # separate functions, one compile each
    fn = BlockFunction.cached(
        ("tp", "context", "batch"), (1, 4, 6), tuple(limits.OUTPUTS), devices=jax.local_devices()
    )
    assert fn.sharding.n_devices == 2 and fn.sharding.axis == 2  # batch (6) splits over 2
    a, b = xr.open_zarr(one.path).load(), xr.open_zarr(both.path).load()
    assert set(a.data_vars) == set(limits.OUTPUTS)
    for name in a.data_vars:
        if name in DEFAULT_OUTPUTS:  # what a sweep stores by default: bit for bit
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
        elif a[name].dtype.kind == "f":
            # XLA fuses the partitioned program on its own: step_time_no_cache may round
            # differently in the last bit (float32 and float64 alike)
            np.testing.assert_array_max_ulp(a[name].values, b[name].values, maxulp=1)
        else:
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


@pytest.mark.parametrize("spec", [0, -1, "some", 1.5, True])
def test_bad_device_setting_is_refused(spec):
    with pytest.raises(ValueError, match=r"devices = .*; allowed: all, or a whole number >= 1"):
        select_devices(spec)
    assert len(select_devices(2)) == 2 and len(select_devices("all")) == 2


def test_more_devices_than_there_are_is_refused():
    with pytest.raises(
        ValueError,
        match=r"devices = 3 but there are only 2 local cpu devices; "
        r"allowed: all, or 1 to 2",
    ):
        select_devices(3)


def test_devices_setting_reaches_the_sweep(tmp_path):
    with pytest.raises(SweepError, match=r"devices = 4"):
        run(compose(GRID + ["devices=4", f"store.path={tmp_path / 's.zarr'}"]), verbose=False)
    assert not (tmp_path / "s.zarr").exists()
