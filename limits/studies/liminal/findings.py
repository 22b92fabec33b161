"""The LIMINAL study's findings: what a store shows for each published finding of the paper
(arXiv 2507.14397; docs/references.md s.1), each a ``Finding``, with ``findings(ds)`` and
``findings_table(found)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from limits.model.sync import leaves_node
from limits.studies.common import (
    Finding,
    at,
    at_known,
    ctx_label,
    feasible,
    fmax,
    fmt_coords,
    has,
    job_params,
    normalise,
    where_max,
)
from limits.studies.paper import BASE_HW, BIG_MODEL, MOE_MODEL, PAPER


def _hw_ratio(ds: xr.Dataset, hw: str, name: str = "mem_bw") -> float:
    """Per-chip ``name`` of preset ``hw`` over that of the HBM3 preset."""
    a = getattr(job_params(ds, hw, BIG_MODEL).hardware, name)
    b = getattr(job_params(ds, BASE_HW, BIG_MODEL).hardware, name)
    return float(a) / float(b)


def _not_covered(key: str, title: str, paper: str, what: str) -> Finding:
    return Finding(key, title, paper, f"The store does not cover {what}.", "not covered")


def _scale_out_tps(ds: xr.Dataset, hw: str) -> list[float]:
    """tp values whose collectives leave one server of preset ``hw`` (use ``sync_latency``)."""
    if "tp" not in ds.dims:
        return []
    hardware = job_params(ds, hw, BIG_MODEL).hardware
    return [float(t) for t in ds["tp"].values if leaves_node(hardware, float(t))]


# --------------------------------------------------------------------------- the findings


def _golden(ds: xr.Dataset) -> Finding:
    paper_values = PAPER["golden_utps"]
    title = "Golden point: Llama3-405B on 32 HBM3 chips, batch 1"
    paper = (
        f"{paper_values[4096]} UTPS at 4K context and {paper_values[131072]} UTPS at 128K "
        f"(TP{PAPER['golden_tp']}, {PAPER['scale_out_sync_s'] * 1e6:g} us sync)"
    )
    numbers, parts, agree = {}, [], True
    for context, published in paper_values.items():
        point = at(
            ds,
            hardware=BASE_HW,
            model=BIG_MODEL,
            tp=PAPER["golden_tp"],
            batch=1,
            context=context,
            sync_latency=PAPER["scale_out_sync_s"],
        )
        if point is None:
            return _not_covered("golden", title, paper, "the golden points")
        utps = float(point["utps"])
        numbers[f"utps_{ctx_label(context)}"] = utps
        parts.append(f"{utps:.1f} UTPS at {ctx_label(context)}")
        agree &= round(utps) == published
    return Finding(
        "golden", title, paper, "; ".join(parts) + ".", "agrees" if agree else "differs", numbers
    )


def _tp128(ds: xr.Dataset) -> Finding:
    title = "128 HBM3 chips easily reach 600 UTPS on Llama3-405B"
    paper = f"TP128 on xPU-HBM3 serves Llama3-405B at well over {PAPER['tp128_utps']} UTPS."
    sub = at(
        ds,
        hardware=BASE_HW,
        model=BIG_MODEL,
        tp=128,
        batch=1,
        sync_latency=PAPER["scale_out_sync_s"],
    )
    if sub is None:
        return _not_covered("tp128", title, paper, "HBM3 x 405B x TP128 x batch 1 x 2.25 us")
    utps = sub["utps"]
    numbers = {"utps_min": float(utps.min()), "utps_max": float(utps.max())}
    at4k = at(sub, context=4096)
    text = ""
    if at4k is not None:
        numbers["utps_4K"] = float(at4k["utps"])
        text = f"{numbers['utps_4K']:.0f} UTPS at 4K context; "
    lo, hi = float(sub["context"].min()), float(sub["context"].max())
    text += (
        f"{numbers['utps_min']:.0f}-{numbers['utps_max']:.0f} UTPS over context "
        f"{ctx_label(lo)}-{ctx_label(hi)} (batch 1, {PAPER['scale_out_sync_s'] * 1e6:g} us "
        f"sync)."
    )
    verdict = "agrees" if numbers["utps_min"] >= PAPER["tp128_utps"] else "differs"
    return Finding("tp128", title, paper, text, verdict, numbers)


def _hbm3_long_context(ds: xr.Dataset) -> Finding:
    title = "No HBM3 configuration reaches 1000 UTPS at long context"
    paper = (
        f"At 128K context no xPU-HBM3 deployment of Llama3-405B reaches "
        f"{PAPER['hbm3_long_context_utps']} UTPS."
    )
    sub = at(ds, hardware=BASE_HW, model=BIG_MODEL)
    if sub is None or "context" not in sub.dims:
        return _not_covered("hbm3_long_context", title, paper, "HBM3 x 405B over context")
    sub = sub.sel(context=sub["context"].max())
    ok = feasible(sub)
    at_paper_sync = at(sub, sync_latency=PAPER["scale_out_sync_s"])
    numbers = {"max_utps_any_sync": fmax(sub["utps"], ok), "context": float(sub["context"])}
    where = where_max(sub, "utps")
    text = (
        f"at {ctx_label(numbers['context'])} the best feasible HBM3 point reaches "
        f"{numbers['max_utps_any_sync']:.0f} UTPS ({fmt_coords(where)}) over every swept "
        f"sync latency"
    )
    verdict_value = numbers["max_utps_any_sync"]
    if at_paper_sync is not None:
        numbers["max_utps"] = fmax(at_paper_sync["utps"], feasible(at_paper_sync))
        text = (
            f"max {numbers['max_utps']:.0f} UTPS at the paper's "
            f"{PAPER['scale_out_sync_s'] * 1e6:g} us sync; " + text
        )
        verdict_value = numbers["max_utps"]
    text += "."
    if numbers["max_utps_any_sync"] >= PAPER["hbm3_long_context_utps"]:
        text += " Faster sync than the paper assumed crosses 1000 UTPS."
    verdict = "agrees" if verdict_value < PAPER["hbm3_long_context_utps"] else "differs"
    return Finding("hbm3_long_context", title, paper, text, verdict, numbers)


def _gain_vs_hbm3(ds: xr.Dataset, hw: str, sync: float | None) -> xr.DataArray | None:
    """UTPS of ``hw`` over UTPS of HBM3 at equal everything else, where both are feasible."""
    base, other = at(ds, hardware=BASE_HW), at(ds, hardware=hw)
    if base is None or other is None:
        return None
    if sync is not None:
        base, other = at(base, sync_latency=sync), at(other, sync_latency=sync)
        if base is None or other is None:
            return None
    ok = feasible(base) & feasible(other)
    return (other["utps"] / base["utps"]).where(ok)


def _bandwidth(ds: xr.Dataset) -> Finding:
    lo, hi = PAPER["bandwidth_gain"]
    title = f"Raising bandwidth {PAPER['bandwidth_factor']}x buys only {lo}-{hi}x UTPS"
    paper = (
        f"About {PAPER['bandwidth_factor']}x the HBM3 bandwidth gives only {lo}-{hi}x "
        f"UTPS, because exposed sync takes over."
    )
    if "hardware" not in ds.dims or not has(ds, "hardware", BASE_HW):
        return _not_covered("bandwidth", title, paper, "xPU-HBM3 and faster parts")
    numbers, rows = {}, []
    for hw in ds["hardware"].values.tolist():
        if hw == BASE_HW:
            continue
        gain = _gain_vs_hbm3(ds, hw, PAPER["scale_out_sync_s"])
        if gain is None:
            continue
        values = np.asarray(gain.values, float)
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        bw = _hw_ratio(ds, hw)
        numbers[f"{hw}_bw_ratio"] = bw
        numbers[f"{hw}_gain_min"] = float(values.min())
        numbers[f"{hw}_gain_max"] = float(values.max())
        row = f"{hw} ({bw:.3g}x bandwidth): {values.min():.2f}-{values.max():.2f}x"
        if "batch" in gain.dims and has(gain, "batch", 1):
            b1 = np.asarray(gain.sel(batch=1).values, float)
            b1 = b1[np.isfinite(b1)]
            if b1.size:
                numbers[f"{hw}_gain_batch1_min"] = float(b1.min())
                numbers[f"{hw}_gain_batch1_max"] = float(b1.max())
                row += f" ({b1.min():.2f}-{b1.max():.2f}x at batch 1)"
        rows.append(row)
    if not rows:
        return _not_covered("bandwidth", title, paper, "points feasible on HBM3 and a faster part")
    # the part closest to the paper's 8x
    near = min(
        (h for h in numbers if h.endswith("_bw_ratio")),
        key=lambda h: abs(np.log(numbers[h] / PAPER["bandwidth_factor"])),
    )
    hw8 = near.removesuffix("_bw_ratio")
    g_lo, g_hi = numbers[f"{hw8}_gain_min"], numbers[f"{hw8}_gain_max"]
    text = (
        f"UTPS over HBM3 at equal chips, model, context, batch and "
        f"{PAPER['scale_out_sync_s'] * 1e6:g} us sync (points feasible on both): "
        + "; ".join(rows)
        + f". The part nearest {PAPER['bandwidth_factor']}x, {hw8}, "
        f"buys {g_lo:.2f}-{g_hi:.2f}x."
    )
    numbers["nearest_gain_min"], numbers["nearest_gain_max"] = g_lo, g_hi

    def within(a: float, b: float) -> bool:  # inside the paper's range, 10 % slack
        return a >= 0.9 * lo and b <= 1.1 * hi

    verdict = "agrees" if within(g_lo, g_hi) else "differs"
    if (
        verdict == "differs"
        and f"{hw8}_gain_batch1_min" in numbers
        and within(numbers[f"{hw8}_gain_batch1_min"], numbers[f"{hw8}_gain_batch1_max"])
    ):
        verdict = "partly"
        text += (
            " At batch 1 (single user) the range matches the paper's; larger batches, "
            "where the KV-cache read dominates and sync is a smaller share of the step, "
            "gain more."
        )
    return Finding("bandwidth", title, paper, text, verdict, numbers, "bandwidth_gain.png")


def _sync(ds: xr.Dataset) -> Finding:
    knee, need = PAPER["sync_knee_s"] * 1e6, PAPER["sync_needed_s"] * 1e6
    title = f"Once bandwidth is ~10x HBM3, sync below {knee:g} us gives large gains"
    paper = (
        f"With ~{PAPER['fast_bandwidth_factor']}x the HBM3 bandwidth, cutting the sync "
        f"latency below {knee:g} us gives large UTPS gains; ~{need:g} us is needed."
    )
    if "sync_latency" not in ds.dims or "hardware" not in ds.dims:
        return _not_covered("sync", title, paper, "a sync-latency axis over several parts")
    syncs = np.sort(ds["sync_latency"].values.astype(float))
    above = syncs[syncs >= PAPER["sync_knee_s"]]
    slow: float | None
    if has(ds, "sync_latency", PAPER["scale_out_sync_s"]):
        slow = PAPER["scale_out_sync_s"]
    else:
        slow = float(above.min()) if above.size else None
    fast = [s for s in syncs if s < PAPER["sync_knee_s"]]
    if slow is None or not fast:
        return _not_covered("sync", title, paper, "sync latencies on both sides of 2.5 us")
    fastest = float(min(fast))
    numbers, rows = {}, []
    for hw in ds["hardware"].values.tolist():
        tps = _scale_out_tps(ds, hw)
        sub = at(ds, hardware=hw, batch=1)
        if sub is None or not tps:
            continue
        sub = sub.sel(tp=tps)
        a, b = sub.sel(sync_latency=fastest), sub.sel(sync_latency=slow)
        gain = (a["utps"] / b["utps"]).where(feasible(b))
        values = np.asarray(gain.values, float)
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        bw = _hw_ratio(ds, hw)
        numbers[f"{hw}_bw_ratio"] = bw
        numbers[f"{hw}_gain_median"] = float(np.median(values))
        numbers[f"{hw}_gain_max"] = float(values.max())
        row = (
            f"{hw} ({bw:.3g}x bandwidth): median {np.median(values):.2f}x, up to "
            f"{values.max():.2f}x"
        )
        if (
            has(sub, "sync_latency", PAPER["sync_needed_s"])
            and abs(fastest - PAPER["sync_needed_s"]) > 1e-12
        ):
            at1 = (
                sub.sel(
                    sync_latency=sub["sync_latency"].values[
                        np.argmin(np.abs(sub["sync_latency"].values - PAPER["sync_needed_s"]))
                    ]
                )["utps"]
                / b["utps"]
            ).where(feasible(b))
            v1 = np.asarray(at1.values, float)
            v1 = v1[np.isfinite(v1)]
            numbers[f"{hw}_gain_1us_median"] = float(np.median(v1))
            row += f" (median {np.median(v1):.2f}x at {PAPER['sync_needed_s'] * 1e6:g} us)"
        rows.append(row)
    if not rows or f"{BASE_HW}_gain_median" not in numbers:
        return _not_covered(
            "sync", title, paper, "batch-1 scale-out points of HBM3 and faster parts"
        )
    text = (
        f"UTPS gain from cutting sync from {slow * 1e6:g} us to {fastest * 1e6:g} us "
        f"(batch 1, scale-out TP, every model and context, feasible points): "
        + "; ".join(rows)
        + "."
    )
    fast_parts = [
        h.removesuffix("_bw_ratio")
        for h in numbers
        if h.endswith("_bw_ratio") and numbers[h] >= 0.75 * PAPER["fast_bandwidth_factor"]
    ]
    base_gain = numbers[f"{BASE_HW}_gain_median"]
    fast_gain = min((numbers[f"{h}_gain_median"] for h in fast_parts), default=float("nan"))
    numbers["fast_parts_min_median_gain"] = fast_gain
    verdict = (
        "agrees"
        if np.isfinite(fast_gain) and fast_gain > 1.5 and fast_gain > 1.5 * base_gain - 0.5
        else "differs"
    )
    return Finding("sync", title, paper, text, verdict, numbers, "sync_gain.png")


def _utilization(ds: xr.Dataset) -> Finding:
    title = "Compute utilisation at low batch is at most about 1%"
    paper = f"At low batch the tensor units are at most ~{PAPER['low_batch_utilization']:.0%} busy."
    if "compute_utilization" not in ds or "batch" not in ds.dims:
        return _not_covered(
            "utilization", title, paper, "compute_utilization (add it to store.variables)"
        )
    b1 = at(ds, batch=1)
    if b1 is None:
        return _not_covered("utilization", title, paper, "batch 1")
    numbers = {"max_batch1": fmax(b1["compute_utilization"], feasible(b1))}
    where = where_max(b1.assign(cu=b1["compute_utilization"]), "cu")
    text = (
        f"max {numbers['max_batch1']:.2%} at batch 1 over every feasible point "
        f"({fmt_coords(where)})"
    )
    per_batch = []
    for b in ds["batch"].values:
        sub = ds.sel(batch=b)
        v = fmax(sub["compute_utilization"], feasible(sub))
        numbers[f"max_batch{int(b)}"] = v
        per_batch.append(f"{int(b)}: {v:.1%}")
    text += "; max by batch: " + ", ".join(per_batch)
    if "model" in b1.dims:
        per_model = []
        for m in b1["model"].values.tolist():
            one = b1.sel(model=m)
            v = fmax(one["compute_utilization"], feasible(one))
            numbers[f"{m}_max_batch1"] = v
            per_model.append(f"{m} {v:.2%}")
        text += "; at batch 1 by model: " + ", ".join(per_model)
    if "hardware" in b1.dims and has(b1, "hardware", BASE_HW):
        one = b1.sel(hardware=BASE_HW)
        parts = []
        for m in one["model"].values.tolist() if "model" in one.dims else []:
            v = fmax(one.sel(model=m)["compute_utilization"], feasible(one.sel(model=m)))
            numbers[f"{BASE_HW}_{m}_max_batch1"] = v
            parts.append(f"{m} {v:.2%}")
        if parts:
            text += f"; on {BASE_HW} at batch 1: " + ", ".join(parts)
    text += "."
    limit = PAPER["low_batch_utilization"] * 1.05
    verdict = "agrees" if numbers["max_batch1"] <= limit else "differs"
    dense_hbm3 = [v for k, v in numbers.items() if k.startswith(f"{BASE_HW}_llama")]
    if verdict == "differs" and dense_hbm3 and max(dense_hbm3) <= limit:
        verdict = "partly"
        text += (
            f" The dense Llama models on {BASE_HW} (the paper's main setting) stay under "
            f"{PAPER['low_batch_utilization']:.0%}; parts with more bandwidth per FLOP/s "
            f"and DeepSeek-V3 (MLA attention does many FLOPs per cached byte at long "
            f"context) run the tensor units harder at batch 1."
        )
    return Finding("utilization", title, paper, text, verdict, numbers)


def _capacity(ds: xr.Dataset) -> Finding:
    title = "Large models need hundreds of GB; TP8 serves 405B to a single user only"
    paper = (
        "Serving a large model needs hundreds of GB of memory; small systems (TP8) serve "
        "Llama3-405B to a single user only."
    )
    sub = at(ds, model=BIG_MODEL, tp=8)
    if sub is None or "max_batch" not in ds or "memory_required" not in ds:
        return _not_covered("capacity", title, paper, "405B at TP8 with max_batch stored")
    numbers, rows = {}, []
    b1 = at(ds, model=BIG_MODEL, batch=1)
    if b1 is not None:
        numbers["memory_required_batch1_min_GB"] = float(b1["memory_required"].min()) / 1e9
    if "context" not in sub.coords:
        return _not_covered("capacity", title, paper, "405B at TP8 with a context coordinate")
    contexts = np.atleast_1d(sub["context"].values)
    pick_ctx: list[float] = [c for c in (4096, 131072) if has(sub, "context", c)] or [
        float(contexts[0])
    ]
    for hw in sub["hardware"].values.tolist() if "hardware" in sub.dims else []:
        cells = []
        for c in pick_ctx:
            one = at_known(sub, hardware=hw, context=c)
            mb = float(np.asarray(one["max_batch"].values, float).max())
            numbers[f"{hw}_max_batch_{ctx_label(c)}"] = mb
            cells.append(f"{mb:.0f} at {ctx_label(c)}")
        rows.append(f"{hw}: " + ", ".join(cells))
    text = ""
    if "memory_required_batch1_min_GB" in numbers:
        text = (
            f"Llama3-405B needs at least {numbers['memory_required_batch1_min_GB']:.0f} GB "
            f"for one user. "
        )
    text += "Largest batch that fits on 8 chips: " + "; ".join(rows) + "."
    single = [numbers[k] for k in numbers if "_max_batch_" in k]
    verdict = "agrees" if single and max(single) <= 1 else "differs"
    if verdict == "differs":
        more = [
            r.split(":")[0]
            for r in rows
            if any(numbers[f"{r.split(':')[0]}_max_batch_{ctx_label(c)}"] > 1 for c in pick_ctx)
        ]
        text += (
            f" More than one user fits on TP8 with {', '.join(more)}; "
            f"parts with less memory cannot hold the model at all (max batch 0)."
        )
    return Finding("capacity", title, paper, text, verdict, numbers)


def _extreme_utps(ds: xr.Dataset) -> Finding:
    title = "2000+ UTPS with fast sync; 10,000+ needs smaller models or context"
    paper = (
        f"{PAPER['fast_sync_utps']}+ UTPS is reachable with fast sync; "
        f"{PAPER['extreme_utps']:,}+ needs smaller models or shorter context."
    )
    if "model" not in ds.dims or "sync_latency" not in ds.dims:
        return _not_covered("extreme_utps", title, paper, "models x sync latency")
    ok = feasible(ds)
    fast = ds["sync_latency"] <= PAPER["sync_needed_s"] * (1 + 1e-6)
    numbers, rows = {}, []
    for m in ds["model"].values.tolist():
        sub, okm = ds.sel(model=m), ok.sel(model=m)
        best_fast = fmax(sub["utps"], okm & fast.broadcast_like(okm))
        numbers[f"{m}_max_utps_fast_sync"] = best_fast
        n_ctx = []
        if "context" in ds.dims:
            for c in ds["context"].values:
                v = fmax(sub["utps"].sel(context=c), okm.sel(context=c))
                numbers[f"{m}_max_utps_{ctx_label(c)}"] = v
                if v >= PAPER["extreme_utps"]:
                    n_ctx.append(ctx_label(c))
        rows.append(
            f"{m}: {best_fast:,.0f} UTPS at sync <= {PAPER['sync_needed_s'] * 1e6:g} us"
            + (
                f", {PAPER['extreme_utps']:,}+ at context {', '.join(n_ctx)}"
                if n_ctx
                else f", never {PAPER['extreme_utps']:,}+"
            )
        )
    big = numbers.get(f"{BIG_MODEL}_max_utps_fast_sync", float("nan"))
    slow = ds["sync_latency"] >= PAPER["scale_out_sync_s"] * (1 - 1e-6)
    if BIG_MODEL in ds["model"].values.tolist():
        numbers[f"{BIG_MODEL}_max_utps_slow_sync"] = fmax(
            ds["utps"].sel(model=BIG_MODEL),
            ok.sel(model=BIG_MODEL) & slow.broadcast_like(ok.sel(model=BIG_MODEL)),
        )
    text = "Best feasible UTPS per model: " + "; ".join(rows) + "."
    if f"{BIG_MODEL}_max_utps_slow_sync" in numbers:
        text += (
            f" Llama3-405B at sync >= {PAPER['scale_out_sync_s'] * 1e6:g} us: "
            f"{numbers[f'{BIG_MODEL}_max_utps_slow_sync']:,.0f} UTPS."
        )
    big_10k = [
        k
        for k in numbers
        if k.startswith(BIG_MODEL + "_max_utps_")
        and "K" in k
        and numbers[k] >= PAPER["extreme_utps"]
    ]
    verdict = "agrees" if big >= PAPER["fast_sync_utps"] and not big_10k else "differs"
    return Finding("extreme_utps", title, paper, text, verdict, numbers, "max_utps.png")


def _moe(ds: xr.Dataset) -> Finding:
    title = "MoE models gain expert reuse as the batch grows; long context hurts efficiency"
    paper = (
        "DeepSeek-V3 reads more of its experts as the batch grows, so each weight byte "
        "serves more tokens; long context adds KV traffic that erodes the gain."
    )
    need = ("weight_bytes_read", "stps")
    sub = at(ds, model=MOE_MODEL, hardware=BASE_HW)
    if sub is None or any(n not in ds for n in need) or "batch" not in ds.dims:
        return _not_covered("moe", title, paper, "DeepSeek-V3 on HBM3 with weight_bytes_read")
    sub = at(sub, sync_latency=PAPER["scale_out_sync_s"]) or sub
    if "tp" in sub.dims:
        sub = sub.sel(tp=sub["tp"].max())
    b_lo, b_hi = float(sub["batch"].min()), float(sub["batch"].max())
    ctx_lo = float(sub["context"].min()) if "context" in sub.dims else None
    short = sub.sel(context=ctx_lo) if ctx_lo is not None else sub
    w_lo = float(short["weight_bytes_read"].sel(batch=b_lo))
    w_hi = float(short["weight_bytes_read"].sel(batch=b_hi))
    reuse = (w_lo / b_lo) / (w_hi / b_hi)  # weight bytes per token, small over large batch
    numbers = {
        "weight_bytes_read_small_batch_GB": w_lo / 1e9,
        "weight_bytes_read_large_batch_GB": w_hi / 1e9,
        "weight_bytes_per_token_reduction": reuse,
        "batch_ratio": b_hi / b_lo,
    }
    text = (
        f"DeepSeek-V3 on xPU-HBM3 (TP{float(sub['tp']):g}): weight bytes read per step grow "
        f"from {w_lo / 1e9:.1f} GB at batch {b_lo:g} to {w_hi / 1e9:.1f} GB at batch "
        f"{b_hi:g}, so weight bytes per token fall {reuse:.1f}x for a {b_hi / b_lo:g}x "
        f"batch (a dense model: exactly {b_hi / b_lo:g}x)."
    )
    if "context" in sub.dims and sub.sizes["context"] > 1:
        ok = feasible(sub)
        gains = {}
        for c in sub["context"].values:
            s = sub.sel(context=c)
            okc = ok.sel(context=c)
            if bool(okc.sel(batch=b_lo)) and bool(okc.any()):
                best = fmax(s["stps"], okc)
                gains[float(c)] = best / float(s["stps"].sel(batch=b_lo))
        if gains:
            c_short, c_long = min(gains), max(gains)
            numbers["stps_gain_short_context"] = gains[c_short]
            numbers["stps_gain_long_context"] = gains[c_long]
            text += (
                f" Best feasible STPS over batch {b_lo:g} STPS: {gains[c_short]:.1f}x at "
                f"{ctx_label(c_short)} context, {gains[c_long]:.1f}x at {ctx_label(c_long)}."
            )
    verdict = (
        "agrees"
        if reuse > 1
        and numbers.get("stps_gain_long_context", 0)
        < numbers.get("stps_gain_short_context", np.inf)
        else "differs"
    )
    return Finding("moe", title, paper, text, verdict, numbers, "moe_batch.png")


FINDINGS: tuple[Callable[[xr.Dataset], Finding], ...] = (
    _golden,
    _tp128,
    _hbm3_long_context,
    _bandwidth,
    _sync,
    _utilization,
    _capacity,
    _extreme_utps,
    _moe,
)


def findings(ds: xr.Dataset) -> list[Finding]:
    """What the store shows for each published finding (golden point first)."""
    ds = normalise(ds)
    return [f(ds) for f in FINDINGS]


def findings_table(found: Sequence[Finding]) -> pd.DataFrame:
    """One row per finding: title, the paper's claim, ours, verdict."""
    return pd.DataFrame(
        [
            {"finding": f.title, "paper": f.paper, "this sweep": f.ours, "verdict": f.verdict}
            for f in found
        ]
    )
