"""Grid axes: parsing (lists, units, ranges), errors naming the axis, validation."""

import numpy as np
import pytest

import limits
from limits.model.params import ParameterError
from limits.sweep.grid import broadcast_axes, parse_axis, parse_grid, validate_grid
from limits.units import UnitError


def test_explicit_values_with_units_are_si():
    values = parse_axis("mem_bw", ["4 TiB/s", "8TiB/s", 1e12])
    np.testing.assert_array_equal(values, [4 * 2.0**40, 8 * 2.0**40, 1e12])
    np.testing.assert_array_equal(parse_axis("sync_latency", ["2.25 us"]), [2.25e-6])


def test_scalar_is_a_one_value_axis():
    np.testing.assert_array_equal(parse_axis("tp", 32), [32.0])


def test_log_range_is_geometric_and_includes_both_ends():
    values = parse_axis("context", {"start": 1024, "stop": 131072, "num": 8, "scale": "log"})
    np.testing.assert_array_equal(values, 1024 * 2.0 ** np.arange(8))


def test_linear_range_with_units():
    values = parse_axis("sync_latency", {"start": "1 us", "stop": "3 us", "num": 3})
    np.testing.assert_allclose(values, [1e-6, 2e-6, 3e-6])


def test_integer_range_is_rounded():
    values = parse_axis("batch", {"start": 1, "stop": 100, "num": 5, "scale": "log"})
    assert (values == np.round(values)).all() and values[0] == 1 and values[-1] == 100


@pytest.mark.parametrize(
    "name, spec, match",
    [
        ("not_a_param", [1], "valid axis names: .*mem_bw"),
        ("tp", [], "grid.tp is empty"),
        ("tp", [8, 8], "grid.tp has repeated values"),
        ("context", {"start": 1, "stop": 8}, "grid.context: a range needs"),
        ("context", {"start": 1, "stop": 8, "num": 4, "scale": "cubic"}, "grid.context.scale"),
        ("context", {"start": 0, "stop": 8, "num": 4, "scale": "log"}, "log range"),
        ("batch", {"start": 1, "stop": 3, "num": 9}, "repeated values"),
    ],
)
def test_bad_axes_name_the_axis(name, spec, match):
    with pytest.raises(ParameterError, match=match):
        parse_axis(name, spec)


def test_bad_unit_names_the_axis():
    with pytest.raises(UnitError, match="grid.mem_bw"):
        parse_axis("mem_bw", ["4 TiB"])


def test_grid_keeps_order_shape_and_size():
    grid = parse_grid({"tp": [8, 16], "context": [1024, 2048, 4096], "batch": [1]})
    assert grid.names == ("tp", "context", "batch")
    assert grid.shape == (2, 3, 1) and grid.size == 6
    assert grid.units("mem_bw") == "B/s" and grid.units("tp") == "1"


def test_validate_rejects_out_of_range_values_before_any_evaluation():
    base = limits.load_params("xpu_hbm3", "llama3_405b")
    with pytest.raises(ParameterError, match="deployment.batch"):
        validate_grid(base, parse_grid({"batch": [1, 0]}))
    with pytest.raises(ParameterError, match="tp"):  # tp must divide n_heads = 128
        validate_grid(base, parse_grid({"tp": [8, 24]}))
    with pytest.raises(ParameterError, match="context"):  # beyond max_context
        validate_grid(base, parse_grid({"context": [4096, 10**6]}))
    validate_grid(base, parse_grid({"tp": [8, 16], "context": [4096, 131072]}))


def test_cross_axis_rule_sees_every_combination():
    base = limits.load_params("xpu_hbm3", "llama3_405b")
    # each axis alone is fine for the base, the combination tp=256 with n_heads=8 is not
    with pytest.raises(ParameterError):
        validate_grid(
            base.replace(n_heads=128.0), parse_grid({"tp": [8, 256], "n_heads": [128, 96]})
        )


def test_broadcast_axes_shapes():
    out = broadcast_axes(("a", "b", "c"), [np.zeros(2), np.zeros(3), np.zeros(4)])
    assert [v.shape for v in out.values()] == [(2, 1, 1), (1, 3, 1), (1, 1, 4)]
