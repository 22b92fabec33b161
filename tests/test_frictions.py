"""Frictions a new user met (issue 15), each pinned: the run summary names its device, ..."""

import jax

from limits.sweep.job import compose, run


def test_the_run_summary_names_the_device(tmp_path, capsys):
    cfg = compose(["grid=point", f"store.path={tmp_path / 's.zarr'}", "limits.progress=false"])
    run(cfg)
    first = capsys.readouterr().out.splitlines()[0]
    device = jax.devices()[0]
    assert f"1 device(s): {device.platform} ({device.device_kind})" in first


def test_a_yaml_boolean_is_accepted_for_a_true_false_choice():
    """`model.tied_embeddings=true` reaches the config as a bool; it means "true"."""
    from limits.sweep.config import params_from_cfg

    p = params_from_cfg(compose(["grid=point", "model=llama3_8b", "model.tied_embeddings=true"]))
    assert p.model.tied_embeddings == "true"
    q = params_from_cfg(compose(["grid=point", "model=llama3_8b", "model.tied_embeddings=false"]))
    assert q.model.tied_embeddings == "false"


def test_a_context_beyond_the_trained_length_says_how_to_allow_it():
    import pytest

    import limits
    from limits.errors import ParameterError

    with pytest.raises(ParameterError, match=r"set model\.max_context=262144$"):
        limits.load_params("xpu_hbm3", "llama3_405b", context=262144.0)
    p = limits.load_params("xpu_hbm3", "llama3_405b", context=262144.0, max_context=262144.0)
    assert float(limits.evaluate(p)["utps"]) > 0.0
