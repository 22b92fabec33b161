"""Export any slice of results to CSV or Parquet as a flat table (one row per point)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import xarray as xr

__all__ = ["export", "to_table", "units_sidecar_path"]

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def units_sidecar_path(path: str | Path) -> Path:
    """Where ``export(..., units="sidecar")`` writes units: ``<path>.units.json``."""
    path = Path(path)
    return path.with_name(path.name + ".units.json")


def _split_wrt(ds: xr.Dataset) -> xr.Dataset:
    """Elasticities (dim ``wrt``) become one column per parameter: ``<var>.<wrt>``."""
    if "wrt" not in ds.dims:
        return ds
    out = ds.drop_dims("wrt")
    for name in ds.data_vars:
        if "wrt" in ds[name].dims:
            for w in ds["wrt"].values:
                out[f"{name}.{w}"] = (
                    ds[name].sel(wrt=w).drop_vars("wrt").assign_attrs(ds[name].attrs)
                )
    return out


def to_table(
    data: xr.Dataset | xr.DataArray | pd.DataFrame,
) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Flatten to a DataFrame (dims and coordinates become columns) and a mapping
    column -> {"units", "long_name"}. A DataFrame (e.g. a Pareto frontier table) passes
    through with units from ``df.attrs["units"]``."""
    if isinstance(data, pd.DataFrame):
        units = data.attrs.get("units", {})
        return data, {
            str(c): {"units": str(units.get(c, "")), "long_name": ""} for c in data.columns
        }
    ds = data.to_dataset(name=data.name or "value") if isinstance(data, xr.DataArray) else data
    ds = _split_wrt(ds)
    if ds.dims:
        df = ds.to_dataframe().reset_index()
    else:
        df = pd.DataFrame({str(k): [v.values.item()] for k, v in ds.variables.items()})
    meta = {}
    for col in df.columns:
        attrs = ds[col].attrs if col in ds.variables else {}
        meta[str(col)] = {
            "units": str(attrs.get("units", "")),
            "long_name": str(attrs.get("long_name", "")),
        }
    return df, meta


def export(
    data: xr.Dataset | xr.DataArray | pd.DataFrame, path: str | Path, *, units: str = "columns"
) -> Path:
    """Write `data` (any slice, any dims, or a table such as a Pareto frontier) as CSV or
    Parquet, chosen by the extension (``.csv``, ``.parquet``/``.pq``).

    **Arguments:**
    - `units`: ``"columns"`` puts units in column names (``"stps [tok/s]"``; unitless columns
      keep their name); ``"sidecar"`` keeps plain names and writes ``<path>.units.json``
      (column -> units and long_name).

    **Returns:** the path written.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"export path {path}: unknown extension {path.suffix!r}; allowed: {', '.join(_FORMATS)}"
        )
    if units not in ("columns", "sidecar"):
        raise ValueError(f"units = {units!r} is unknown; allowed: columns, sidecar")
    df, meta = to_table(data)
    if units == "columns":
        df = df.rename(
            columns={
                c: f"{c} [{m['units']}]" for c, m in meta.items() if m["units"] not in ("", "1")
            }
        )
    else:
        units_sidecar_path(path).write_text(json.dumps(meta, indent=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path
