"""Power and cost of the deployment (all replicas)."""

from __future__ import annotations

import jax.numpy as jnp

from limits.model.params import Params

HOURS_PER_YEAR = 8766.0  # 365.25 days


def economics(p: Params, stps, chips=None) -> dict:
    """Provisioned power, energy per token, cost per million tokens, tokens per dollar of a
    deployment producing ``stps`` tokens/s on ``chips`` chips (default: all replicas)."""
    d, hw, e = p.deployment, p.hardware, p.economics
    chips = d.tp * d.dp * d.pp * d.replicas if chips is None else chips
    nodes = jnp.ceil(chips / hw.node_size)
    power = chips * hw.chip_power + nodes * hw.node_power
    hourly = (
        chips * (hw.chip_price + hw.chip_capex / (e.amortization_years * HOURS_PER_YEAR))
        + power / 1000.0 * e.electricity_price
    )
    tokens_per_hour = stps * 3600.0
    return {
        "chips": chips,
        "power": power,
        "energy_per_token": power / stps,
        "stps_per_watt": stps / power,
        "cost_per_hour": hourly,
        "cost_per_mtok": hourly / tokens_per_hour * 1e6,
        "tokens_per_usd": tokens_per_hour / hourly,
    }
