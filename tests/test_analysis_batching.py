"""Batching advisor: hand-checked toy, and the memory-wall evidence on a model grid."""

import numpy as np
import pytest
from helpers_datasets import model_dataset, toy_batching

from limits.analysis import batching_advisor, kv_share


def test_batching_advisor_toy_by_hand():
    adv = batching_advisor(toy_batching(), fraction=0.95)
    # context 4096: plateau 40 at batch 32; 0.95 x 40 = 38 -> smallest batch 8 (stps 38).
    # memory_required = 10 + 10 batch: 330 at 32, 90 at 8 -> freed 240 = 0.6 of 400;
    # floor(240 / 90) = 2 extra replicas -> (1 + 2) x 38 = 114.
    # context 8192: batch 32 infeasible -> plateau 30 at 16; 0.95 x 30 = 28.5 -> batch 16.
    expect = {
        "plateau_stps": [40, 30],
        "plateau_batch": [32, 16],
        "chosen_batch": [8, 16],
        "chosen_stps": [38, 30],
        "memory_at_plateau": [330, 170],
        "memory_at_chosen": [90, 170],
        "memory_freed": [240, 0],
        "memory_freed_fraction": [0.6, 0.0],
        "extra_replicas": [2, 0],
        "combined_stps": [114, 30],
        "t_mem_at_chosen": [1.8, 2.6],
        "t_compute_at_plateau": [0.64, 0.32],
        "t_sync_at_chosen": [0.5, 0.5],
    }
    for name, values in expect.items():
        np.testing.assert_allclose(adv[name].values, values, err_msg=name)
    # KV share proxy memory_kv / memory_required: 80/90 at batch 8, 320/330 at batch 32
    np.testing.assert_allclose(adv["kv_share_at_chosen"].values[0], 80 / 90)
    np.testing.assert_allclose(adv["kv_share_at_plateau"].values[0], 320 / 330)
    assert adv["kv_share"].attrs["method"].startswith("proxy")
    assert adv["bound_at_plateau"].values.tolist() == ["memory", "memory"]
    assert adv["bound_label"].values[1, 5] == "capacity"
    assert np.isnan(adv["stps"].values[1, 5])  # the curve keeps only feasible points
    assert adv["memory_freed"].attrs["units"] == "B"


def test_batching_advisor_fraction_one_and_errors():
    adv = batching_advisor(toy_batching(), fraction=1.0)
    assert adv["chosen_batch"].values.tolist() == adv["plateau_batch"].values.tolist()
    assert adv["memory_freed"].values.tolist() == [0, 0]
    with pytest.raises(ValueError, match="fraction"):
        batching_advisor(toy_batching(), fraction=1.5)
    with pytest.raises(KeyError, match="batch"):
        batching_advisor(toy_batching().isel(batch=0))


def test_batching_advisor_group_without_feasible_point_is_nan():
    toy = toy_batching()
    toy["feasible"][1, :] = False
    adv = batching_advisor(toy)
    assert np.isnan(adv["plateau_stps"].values[1]) and np.isnan(adv["extra_replicas"].values[1])
    assert adv["plateau_stps"].values[0] == 40


def test_large_batches_stay_memory_bound_because_of_kv_reads():
    # Llama3-8B on 8 HBM3 chips at 32 Ki context: batch 1 reads mostly weights; at batch 256
    # KV reads dominate the bytes (>90 %) and the step stays memory-bound, far from compute.
    ds = model_dataset(fixed={"tp": 8.0}, batch=[1.0, 16.0, 64.0, 256.0], context=[32768.0])
    adv = batching_advisor(ds)
    share = adv["kv_share"].sel(context=32768.0).values
    assert adv["kv_share"].attrs["method"] == "kv_bytes_read / bytes_per_step"
    assert share[0] < 0.5 < 0.9 < share[-1] and np.all(np.diff(share) > 0)
    assert adv["bound_label"].sel(context=32768.0).values.tolist() == ["memory"] * 4
    assert float(adv["t_mem_at_plateau"][0]) > 5 * float(adv["t_compute_at_plateau"][0])
    # the chosen batch reaches the fraction and is no larger than the plateau batch
    assert float(adv["chosen_stps"][0]) >= 0.95 * float(adv["plateau_stps"][0])
    assert float(adv["chosen_batch"][0]) <= float(adv["plateau_batch"][0])
    # proxy and exact share agree for a dense model with pp = 1 and no speculation
    proxy = kv_share(ds.drop_vars(["kv_bytes_read"]))
    np.testing.assert_allclose(proxy.values, adv["kv_share"].values, rtol=1e-12)
