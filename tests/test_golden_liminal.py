"""Golden tests: the LIMINAL paper's published decode figures (REFERENCES.md s.1)."""

import pytest

import limits


@pytest.mark.parametrize("context, published_utps", [(4096, 290), (131072, 271)])
def test_llama3_405b_hbm3_tp32_batch1(context, published_utps):
    p = limits.load_params("xpu_hbm3", "llama3_405b", tp=32, batch=1, context=context,
                           weight_bytes=1, kv_bytes=1)
    out = limits.evaluate(p)
    assert round(float(out["utps"])) == published_utps
    assert limits.BOUND_LABELS[int(out["bound"])] == "memory"
