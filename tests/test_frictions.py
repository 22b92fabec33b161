"""Frictions a new user met (issue 15), each pinned: the run summary names its device, ..."""

import jax

from limits.sweep.job import compose, run


def test_the_run_summary_names_the_device(tmp_path, capsys):
    cfg = compose(["grid=point", f"store.path={tmp_path / 's.zarr'}", "limits.progress=false"])
    run(cfg)
    first = capsys.readouterr().out.splitlines()[0]
    device = jax.devices()[0]
    assert f"1 device(s): {device.platform} ({device.device_kind})" in first
