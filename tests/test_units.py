"""The unit parser: decimal vs binary prefixes, time, compute, power and money units."""

import math

import pytest

from limits.units import UnitError, format_quantity, parse_quantity


@pytest.mark.parametrize(
    "text, kind, expected",
    [
        ("4 TB/s", "B/s", 4e12),
        ("4 TiB/s", "B/s", 4 * 2.0**40),
        ("96 GB", "B", 96e9),
        ("96 GiB", "B", 96 * 2.0**30),
        ("512 MiB", "B", 512 * 2.0**20),
        ("1 kB", "B", 1e3),
        ("1 KiB", "B", 1024.0),
        ("800 Gbit/s", "B/s", 100e9),
        ("2.25 us", "s", 2.25e-6),
        ("2.25 µs", "s", 2.25e-6),
        ("2.25 μs", "s", 2.25e-6),
        ("3 ms", "s", 3e-3),
        ("500 ns", "s", 5e-7),
        ("2 min", "s", 120.0),
        ("1 h", "s", 3600.0),
        ("2.25 PFLOP/s", "FLOP/s", 2.25e15),
        ("989 TFLOPS", "FLOP/s", 989e12),
        ("700 W", "W", 700.0),
        ("23 kW", "W", 23e3),
        ("2.5 USD/h", "USD/h", 2.5),
        ("1 USD/min", "USD/h", 60.0),
        ("0.12 USD/kWh", "USD/kWh", 0.12),
        ("120 USD/MWh", "USD/kWh", 0.12),
        ("30000 USD", "USD", 30000.0),
        ("131072 tok", "tok", 131072.0),
        ("1e3 tokens", "tok", 1e3),
        ("inf B/s", "B/s", math.inf),
    ],
)
def test_parse(text, kind, expected):
    assert parse_quantity(text, kind, "x") == pytest.approx(expected, rel=1e-15)


def test_decimal_and_binary_differ():
    assert parse_quantity("1 TiB/s", "B/s") / parse_quantity("1 TB/s", "B/s") == pytest.approx(
        2.0**40 / 1e12
    )


@pytest.mark.parametrize(
    "value, kind", [(4, "B/s"), (2.5, "s"), ("7", "1"), ("2.5e-6", "s"), ("3", "USD/h")]
)
def test_bare_numbers_are_taken_in_the_parameter_unit(value, kind):
    assert parse_quantity(value, kind, "x") == float(value)


@pytest.mark.parametrize(
    "text, kind, pattern",
    [
        ("4 TiB", "B/s", r"p: unit 'TiB' in '4 TiB' does not match B/s"),
        ("4 TQ/s", "B/s", r"p: unknown unit 'TQ' in '4 TQ/s'; expected a unit of B/s"),
        ("2 Kis", "s", r"p: unknown unit 'Kis'"),  # binary prefixes only on bytes and bits
        ("4 TB/s/s", "B/s", r"use one '/' at most"),
        ("fast", "B/s", r"p: cannot read 'fast'"),
        ("5 W", "USD/h", r"does not match USD/h"),
        ("2 s", "1", r"does not match 1 \(dimensionless\)"),
    ],
)
def test_errors_name_the_parameter(text, kind, pattern):
    with pytest.raises(UnitError, match=pattern):
        parse_quantity(text, kind, "p")


@pytest.mark.parametrize("value", [True, None, [1.0]])
def test_non_numbers_are_rejected(value):
    with pytest.raises(UnitError, match=r"^p: expected a number"):
        parse_quantity(value, "B", "p")


def test_unknown_kind():
    with pytest.raises(KeyError):
        parse_quantity("1 B", "furlong")


def test_format_quantity_round_trips():
    text = format_quantity(4.4e12, "B/s")
    assert text == "4.4 TB/s"
    assert parse_quantity(text, "B/s") == pytest.approx(4.4e12)
    assert format_quantity(2.25e-6, "s") == "2.25 us"
