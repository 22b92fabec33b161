"""Export round trips: CSV and Parquet read back with pandas, units in names or a sidecar."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers_datasets import toy_pareto

from limits.analysis import best_config, export, pareto_frontier
from limits.analysis.export import units_sidecar_path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_units_in_columns(tmp_path, suffix):
    ds = toy_pareto()
    path = export(ds, tmp_path / f"toy{suffix}")
    df = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert len(df) == 9
    assert {"a", "b [s]", "utps [tok/s/user]", "stps [tok/s]", "feasible", "bound"} <= set(df)
    back = df.set_index(["a", "b [s]"])["stps [tok/s]"]
    for a in ds["a"].values:
        for b in ds["b"].values:
            assert back[(a, b)] == float(ds["stps"].sel(a=a, b=b))
    assert df["feasible"].sum() == 8


def test_round_trip_sidecar_and_dataarray_slice(tmp_path):
    ds = toy_pareto()
    path = export(ds["utps"].sel(a=2.0), tmp_path / "slice.parquet", units="sidecar")
    df = pd.read_parquet(path)
    assert sorted(df.columns) == ["a", "b", "utps"]
    np.testing.assert_array_equal(df["utps"], [15.0, 25.0, 5.0])
    meta = json.loads(units_sidecar_path(path).read_text())
    assert meta["utps"]["units"] == "tok/s/user" and meta["b"]["units"] == "s"


def test_export_zero_dim_best_point_and_string_coords(tmp_path):
    best = best_config(toy_pareto(), "stps", {"utps": (">=", 12)})
    df = pd.read_csv(export(best, tmp_path / "best.csv"))
    assert len(df) == 1 and df["stps [tok/s]"][0] == 80.0 and df["b [s]"][0] == 10.0
    multi = toy_pareto().expand_dims(hardware=np.array(["xpu_hbm3", "xpu_sram"], dtype=object))
    df = pd.read_parquet(export(multi, tmp_path / "multi.parquet"))
    assert sorted(set(df["hardware"])) == ["xpu_hbm3", "xpu_sram"] and len(df) == 18


def test_export_elasticities_one_column_per_parameter(tmp_path):
    ds = toy_pareto()
    ds["elasticity_utps"] = xr.DataArray(
        np.arange(18.0).reshape(3, 3, 2),
        dims=("a", "b", "wrt"),
        coords={"wrt": ["mem_bw", "sync_latency"]},
        attrs={"units": "1"},
    )
    df = pd.read_csv(export(ds, tmp_path / "e.csv"))
    assert len(df) == 9
    assert df["elasticity_utps.sync_latency"].tolist() == list(np.arange(1.0, 18.0, 2.0))


def test_export_frontier_table_and_bad_extension(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        export(toy_pareto(), tmp_path / "toy.xlsx")
    with pytest.raises(ValueError, match="units"):
        export(toy_pareto(), tmp_path / "toy.csv", units="nowhere")
    df = pd.read_csv(export(pareto_frontier(toy_pareto()), tmp_path / "front.csv"))
    assert len(df) == 6 and df["stps [tok/s]"].max() == 90.0 and "a" in df
