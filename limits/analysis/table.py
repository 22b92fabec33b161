"""Answers that print well: a DataFrame that shows each column's units, and the conversion of
any small result (a best configuration, a batching advice) into one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["Table", "table"]


class Table(pd.DataFrame):
    """A ``pandas.DataFrame`` whose printout (terminal and notebook) names each column's units
    (``attrs["units"]``: column -> unit) in its header; the data and column names are those
    of a plain DataFrame, so code written for one keeps working."""

    @property
    def _constructor(self) -> Any:  # pandas' documented hook for subclasses
        return Table

    def labelled(self) -> pd.DataFrame:
        """A plain DataFrame with ``name [unit]`` column headers (unitless columns keep
        their name)."""
        units = self.attrs.get("units", {})
        return pd.DataFrame(self).rename(
            columns={
                c: f"{c} [{units[c]}]" for c in self.columns if units.get(c) not in (None, "", "1")
            }
        )

    def _shown(self) -> pd.DataFrame:
        """What is printed: one row reads better standing up (a column of values), each
        number to six significant digits (SI values such as 5e-07 s must not round to 0)."""
        shown = self.labelled()
        if len(shown) == 1:
            return pd.DataFrame({"value": [_significant(v) for v in shown.iloc[0]]}, shown.columns)
        return shown

    def __repr__(self) -> str:
        with pd.option_context(
            "display.max_rows", 200, "display.max_columns", 30, "display.width", 250,
            "display.float_format", _significant,
        ):  # fmt: skip
            return repr(self._shown())

    def _repr_html_(self) -> str | None:
        with pd.option_context("display.max_rows", 200, "display.float_format", _significant):
            return self._shown()._repr_html_()


def _significant(value: Any) -> Any:
    """A float to six significant digits (other values unchanged)."""
    return f"{value:.6g}" if isinstance(value, float | np.floating) else value


def _decoded(ds: xr.Dataset) -> xr.Dataset:
    """Flag variables (``bound``: ``flag_values``/``flag_meanings``) as their labels."""
    from limits.analysis.open import bound_labels

    flags = [k for k, v in ds.data_vars.items() if "flag_meanings" in v.attrs]
    return ds.assign({k: bound_labels(ds[k]).rename(k) for k in flags})


def table(data: xr.Dataset | xr.DataArray | pd.DataFrame) -> Table:
    """One row per point of `data` (dims and coordinates as columns, computed, never lazy),
    with units from the variables' attrs and the binding wall by name. A best configuration
    over all dims gives one row."""
    from limits.analysis.export import to_table

    if isinstance(data, xr.DataArray):
        data = data.to_dataset(name=data.name or "value")
    if isinstance(data, xr.Dataset):
        data = _decoded(data.compute())
    df, meta = to_table(data)
    out = Table(df)
    out.attrs["units"] = {c: m["units"] for c, m in meta.items()}
    return out
