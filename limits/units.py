"""Strict parsing of quantities written with units, e.g. ``"4 TiB/s"`` or ``"2.25 us"``.

A small parser rather than pint: pint treats bits and bytes as dimensionless, so it cannot
reject ``"96 G"`` or a bare rate where bytes are expected. Here a byte is a real dimension,
decimal (k, M, G, T, P, E) and binary (Ki, Mi, Gi, Ti, Pi, Ei) prefixes are distinct, and
every parameter declares the one unit kind it accepts.

Accepted form: ``<number> [<prefix>]<unit>[/<prefix><unit>]``. A bare number is taken as
already being in the SI unit of the parameter.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from typing import Any

from limits.errors import UnitError

__all__ = ["UnitError", "parse_quantity", "UNIT_KINDS", "format_quantity", "pint_registry"]


_SI_PREFIXES = {
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "m": 1e-3,
    "u": 1e-6,
    "µ": 1e-6,
    "μ": 1e-6,
    "n": 1e-9,
    "p": 1e-12,
}
_IEC_PREFIXES = {
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}

# base unit -> (factor to SI, dimension exponents, binary prefixes allowed)
_BASES: dict[str, tuple[float, dict[str, int], bool]] = {
    "B": (1.0, {"byte": 1}, True),
    "byte": (1.0, {"byte": 1}, True),
    "bit": (0.125, {"byte": 1}, True),
    "s": (1.0, {"time": 1}, False),
    "min": (60.0, {"time": 1}, False),
    "h": (3600.0, {"time": 1}, False),
    "hour": (3600.0, {"time": 1}, False),
    "FLOP": (1.0, {"flop": 1}, False),
    "FLOPS": (1.0, {"flop": 1, "time": -1}, False),
    "W": (1.0, {"energy": 1, "time": -1}, False),
    "J": (1.0, {"energy": 1}, False),
    "Wh": (3600.0, {"energy": 1}, False),
    "USD": (1.0, {"usd": 1}, False),
    "$": (1.0, {"usd": 1}, False),
    "tok": (1.0, {"token": 1}, False),
    "token": (1.0, {"token": 1}, False),
    "tokens": (1.0, {"token": 1}, False),
}

#: unit kind name -> (dimension exponents, SI unit written in messages)
UNIT_KINDS: dict[str, tuple[dict[str, int], str]] = {
    "1": ({}, "1 (dimensionless)"),
    "B": ({"byte": 1}, "B"),
    "B/s": ({"byte": 1, "time": -1}, "B/s"),
    "s": ({"time": 1}, "s"),
    "FLOP/s": ({"flop": 1, "time": -1}, "FLOP/s"),
    "W": ({"energy": 1, "time": -1}, "W"),
    "USD": ({"usd": 1}, "USD"),
    "USD/h": ({"usd": 1, "time": -1}, "USD/h"),
    "USD/kWh": ({"usd": 1, "energy": -1}, "USD/kWh"),
    "tok": ({"token": 1}, "tokens"),
    "1/s": ({"time": -1}, "1/s"),  # a rate of events (requests arriving)
}
# SI factor of the unit each kind is *reported* in (USD/h and USD/kWh are not SI-coherent).
_KIND_SCALE = {"USD/h": 1.0 / 3600.0, "USD/kWh": 1.0 / 3.6e6}

_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf|nan)\s*(.*?)\s*$")


def _parse_term(term: str) -> tuple[float, Counter]:
    """One unit term such as ``TiB`` or ``us`` -> (SI factor, dimensions)."""
    if term in _BASES:
        factor, dims, _ = _BASES[term]
        return factor, Counter(dims)
    for prefixes, binary in ((_IEC_PREFIXES, True), (_SI_PREFIXES, False)):
        for prefix, scale in prefixes.items():
            if prefix and term.startswith(prefix) and term[len(prefix) :] in _BASES:
                factor, dims, binary_ok = _BASES[term[len(prefix) :]]
                if binary and not binary_ok:
                    continue
                return scale * factor, Counter(dims)
    raise UnitError(f"unknown unit {term!r}")


def _parse_unit(unit: str) -> tuple[float, Counter]:
    parts = unit.split("/")
    if len(parts) > 2 or not all(parts):
        raise UnitError(f"cannot read unit {unit!r}: use one '/' at most, e.g. 'TiB/s'")
    factor, dims = _parse_term(parts[0].strip())
    if len(parts) == 2:
        den_factor, den_dims = _parse_term(parts[1].strip())
        factor /= den_factor
        dims.subtract(den_dims)
    return factor, Counter({k: v for k, v in dims.items() if v})


def parse_quantity(value: object, kind: str, name: str = "value") -> float:
    """Return ``value`` as a float in the SI unit of ``kind`` (see ``UNIT_KINDS``).

    **Arguments:** ``value``: a number, or a string such as ``"4 TiB/s"``; ``kind``: the
    expected unit kind; ``name``: the parameter's name, used in error messages.

    **Returns:** a Python float. Raises ``UnitError`` naming the parameter on a bad unit.
    """
    if kind not in UNIT_KINDS:
        raise KeyError(f"unknown unit kind {kind!r}")
    if isinstance(value, bool):
        raise UnitError(f"{name}: expected a number in {UNIT_KINDS[kind][1]}, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise UnitError(f"{name}: expected a number or a string with units, got {value!r}")
    match = _NUMBER.match(value)
    if not match:
        raise UnitError(f"{name}: cannot read {value!r}; write e.g. '4 TiB/s' or '2.25 us'")
    magnitude, unit = float(match.group(1)), match.group(2)
    if not unit:
        return magnitude
    expected, shown = UNIT_KINDS[kind]
    try:
        factor, dims = _parse_unit(unit)
    except UnitError as err:
        raise UnitError(f"{name}: {err} in {value!r}; expected a unit of {shown}") from None
    if dict(dims) != expected:
        raise UnitError(f"{name}: unit {unit!r} in {value!r} does not match {shown}")
    return magnitude * factor / _KIND_SCALE.get(kind, 1.0)


def format_quantity(value: float, kind: str) -> str:
    """A short human-readable string for an SI value of ``kind`` (decimal prefixes)."""
    unit = UNIT_KINDS[kind][1] if kind != "1" else ""
    if not math.isfinite(value) or value == 0 or kind in ("1", "USD", "USD/h", "USD/kWh"):
        return f"{value:g} {unit}".strip()
    for prefix, scale in (
        ("E", 1e18),
        ("P", 1e15),
        ("T", 1e12),
        ("G", 1e9),
        ("M", 1e6),
        ("k", 1e3),
        ("", 1.0),
        ("m", 1e-3),
        ("u", 1e-6),
        ("n", 1e-9),
    ):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:g} {unit}"


#: what a pint registry lacks to read every ``units`` attribute of a store: the model's own
#: units (pint knows B, s, W, J, h and the prefixes, so ``USD/Mtok`` and ``tok/s/W`` follow)
PINT_DEFINITIONS = (
    "token = [token] = tok",
    "FLOP = [flop] = flop",
    "USD = [currency]",
    "chip = [chip]",
    "user = [user]",
    "request = [request]",
)


@functools.cache
def pint_registry() -> Any:
    """A pint ``UnitRegistry`` that parses the ``units`` attribute of every stored output and
    axis (``tok/s/user``, ``USD/Mtok``, ``FLOP/B``...): ``ds.pint.quantify(unit_registry=
    limits.units.pint_registry())`` with pint-xarray (the ``units`` extra). One registry per
    process, as pint requires of quantities that meet."""
    try:
        import pint
    except ImportError as err:  # an optional extra
        raise ImportError("pint_registry needs pint: pip install 'llm-limits[units]'") from err
    registry: Any = pint.UnitRegistry(force_ndarray_like=True)  # pint-xarray: array quantities
    for line in PINT_DEFINITIONS:
        registry.define(line)
    return registry
