"""refquant.prune schedules and gradual pruning, against TFMOT 0.8.1 (recorded in a fixture) and Zhu & Gupta.

The fixture ``tests/fixtures/prune/tfmot_pruning.json`` holds what TFMOT's own code returned; regenerate
it with ``tests/fixtures/make_tfmot_pruning_fixture.py`` (needs TensorFlow, tf-keras and tfmot).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from refquant import nn, prune
from refquant.data import load_digits
from refquant.errors import QuantizationTypeError, QuantizationValueError
from refquant.models import load_reference_model

FIXTURE = Path(__file__).parent / "fixtures" / "prune" / "tfmot_pruning.json"
REGENERATE = "regenerate with: PYTHONPATH=<tfmot> python tests/fixtures/make_tfmot_pruning_fixture.py"


@pytest.fixture(scope="module")
def tfmot():
    data = json.loads(FIXTURE.read_text())
    assert data["magic"] == "refquant.tfmot_pruning_fixture" and data["format_version"] == 1, REGENERATE
    return data


def f32(bits: int) -> np.float32:
    return np.uint32(bits).view(np.float32)


def test_polynomial_decay_equals_tfmot_bit_for_bit(tfmot):
    checked = 0
    for case in tfmot["polynomial_decay"]:
        init, final, begin, end, power, freq = case["args"]
        sched = prune.PolynomialDecay(init, final, begin, end, power=power, frequency=freq)
        for step, should, bits in case["steps"]:
            got_should, got = sched(step)
            assert isinstance(got, np.float32)
            assert got_should == should, f"{case['args']} step {step}: should_prune {got_should}, TFMOT {should}"
            assert got.view(np.uint32) == bits, (f"{case['args']} step {step}: sparsity {got!r} "
                                                 f"({got.view(np.uint32):#x}), TFMOT {f32(bits)!r} ({bits:#x})")
            checked += 1
    assert checked > 1000


def test_kept_count_equals_tfmot_update_mask(tfmot):
    for n, s_bits, k in tfmot["kept_count"]:
        assert prune.kept_count(n, float(f32(s_bits))) == k, (n, f32(s_bits))


def test_prune_gradually_updates_masks_at_tfmots_steps(tfmot):
    """A Dense(5 -> 4) under prune_low_magnitude, 16 one-example batches, weights constant (TF: lr 0; here x = 0
    so every weight gradient is 0): the masks must change at the same steps, to the same masks."""
    rec = tfmot["prune_low_magnitude"]
    kernel = np.array(rec["kernel"], np.float32)  # Keras (in, out) = our weight transposed
    model = nn.Sequential(nn.Linear(5, 4, bias=False, rng=0))
    model[0].weight.value[...] = kernel.T
    init, final, begin, end, power, freq = rec["schedule"]
    sched = prune.PolynomialDecay(init, final, begin, end, power=power, frequency=freq)
    hist = prune.prune_gradually(model, np.zeros((16, 5), np.float32), np.zeros(16, np.int64), sched,
                                 epochs=1, batch_size=1)
    tf_masks = [np.array(b["mask"], bool).T for b in rec["batches"]]  # after batch b = training step b + 1
    tf_steps = [b["pruning_step"] for b in rec["batches"]]
    assert tf_steps == list(range(1, 17)), "TFMOT counts its steps from 1"
    changed = [tf_steps[i] for i in range(len(tf_masks))
               if not np.array_equal(tf_masks[i], tf_masks[i - 1] if i else np.ones((4, 5), bool))]
    assert hist.mask_steps == changed == [2, 5, 8, 11]
    fresh = nn.Sequential(nn.Linear(5, 4, bias=False, rng=0))
    fresh[0].weight.value[...] = kernel.T
    for t, target in zip(hist.mask_steps, hist.target_sparsity):
        assert target == sched.sparsity(t)
        np.testing.assert_array_equal(prune.magnitude_masks(fresh, target)["0"], tf_masks[t - 1],
                                      err_msg=f"mask at step {t}")
    np.testing.assert_array_equal(hist.masks["0"], tf_masks[-1])
    assert hist.achieved_sparsity == [(~m).mean() for m in (tf_masks[1], tf_masks[4], tf_masks[7], tf_masks[10])]
    assert np.count_nonzero(model[0].weight.value[~hist.masks["0"]]) == 0
    assert model[0].weight_transform is None  # the masks are removed at the end, the zeros stay


def test_first_update_is_at_step_frequency_when_begin_is_0():
    model = nn.Sequential(nn.Linear(5, 4, rng=0))
    sched = prune.PolynomialDecay(0.0, 0.5, 0, 8, frequency=4)
    assert sched.should_prune(0)  # TFMOT's predicate is true at 0, but training steps start at 1
    hist = prune.prune_gradually(model, np.zeros((10, 5), np.float32), np.zeros(10, np.int64), sched,
                                 epochs=1, batch_size=1)
    assert hist.mask_steps == [4, 8]
    assert hist.target_sparsity == [pytest.approx(0.5 - 0.5 * 0.5 ** 3), 0.5]


def test_agp_is_polynomial_decay_with_power_3():
    s_i, s_f, t0, n, dt = 0.05, 0.9, 200, 10, 50
    sched = prune.PolynomialDecay(s_i, s_f, t0, t0 + n * dt, power=3, frequency=dt)
    for t in range(0, t0 + n * dt + 200, 7):
        agp = prune.agp_sparsity(t, s_i, s_f, t0, n, dt)
        assert abs(agp - float(sched.sparsity(t))) <= 1e-6, t  # float64 eq. (1) vs TFMOT's float32
    assert prune.agp_sparsity(t0, s_i, s_f, t0, n, dt) == pytest.approx(s_i, abs=1e-15)  # s_f + (s_i - s_f)
    assert prune.agp_sparsity(t0 + n * dt, s_i, s_f, t0, n, dt) == s_f
    assert prune.agp_sparsity(t0 + n * dt // 2, 0.0, 0.8, t0, n, dt) == pytest.approx(0.8 - 0.8 / 8)  # (1/2)^3
    assert prune.agp_sparsity(0, s_i, s_f, t0, n, dt) == prune.agp_sparsity(t0, s_i, s_f, t0, n, dt)  # clamped


def test_begin_equals_end_is_the_final_sparsity_not_nan():
    sched = prune.PolynomialDecay(0.0, 0.5, 5, 5, frequency=1)
    assert sched(4) == (False, np.float32(0.0))
    assert sched(5) == (True, np.float32(0.5))  # TFMOT: 0/0 = NaN here
    assert sched(6) == (False, np.float32(0.5))


def test_prune_gradually_on_the_mlp_reaches_the_final_sparsity_and_keeps_accuracy():
    (x, y), val = load_digits("train"), load_digits("val")
    model = load_reference_model("mlp")
    steps = 2 * -(-x.shape[0] // 64)  # 2 epochs of batch 64: 34 steps
    sched = prune.PolynomialDecay(0.0, 0.75, 0, 24, frequency=6)
    hist = prune.prune_gradually(model, x, y, sched, epochs=2, batch_size=64, scope="global",
                                 optimizer=nn.Adam(model, lr=1e-3), validation_data=val)
    assert hist.mask_steps == [6, 12, 18, 24] and steps > 24
    assert hist.achieved_sparsity == sorted(hist.achieved_sparsity)
    total = sum(m.size for m in hist.masks.values())
    assert prune.sparsity(model).zeros == total - prune.kept_count(total, 0.75)
    assert len(hist.val_accuracy) == 2 and hist.val_accuracy[-1] > 0.9
    assert isinstance(hist, nn.History)


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, err, msg", [
    (dict(end_step=5, begin_step=10), QuantizationValueError, r"end_step must be >= begin_step = 10, got 5"),
    (dict(end_step=-1), QuantizationValueError, r"end_step must be >= begin_step = 0, got -1"),
    (dict(frequency=0), QuantizationValueError, r"frequency must be an integer >= 1, got 0"),
    (dict(frequency=-3), QuantizationValueError, r"frequency must be an integer >= 1, got -3"),
    (dict(begin_step=-1), QuantizationValueError, r"begin_step must be >= 0, got -1"),
    (dict(initial_sparsity=1.0), QuantizationValueError, r"initial_sparsity must be in \[0, 1\), got 1.0"),
    (dict(final_sparsity=-0.5), QuantizationValueError, r"final_sparsity must be in \[0, 1\), got -0.5"),
    (dict(power=0), QuantizationValueError, r"power must be finite and > 0, got 0"),
    (dict(power="3"), QuantizationTypeError, r"power must be a real number"),
    (dict(begin_step=1.5), QuantizationTypeError, r"begin_step must be an integer"),
])
def test_bad_schedule(kwargs, err, msg):
    args = dict(initial_sparsity=0.0, final_sparsity=0.5, begin_step=0, end_step=100) | kwargs
    with pytest.raises(err, match=msg):
        prune.PolynomialDecay(**args)


def test_bad_agp_and_gradual_arguments():
    with pytest.raises(QuantizationValueError, match=r"s_f must be in \[0, 1\), got 1.0"):
        prune.agp_sparsity(0, 0.0, 1.0, 0, 10, 1)
    with pytest.raises(QuantizationValueError, match=r"dt must be an integer >= 1, got 0"):
        prune.agp_sparsity(0, 0.0, 0.5, 0, 10, 0)
    model, x, y = nn.Sequential(nn.Linear(5, 4, rng=0)), np.zeros((4, 5), np.float32), np.zeros(4, np.int64)
    with pytest.raises(QuantizationTypeError, match="schedule must be a callable"):
        prune.prune_gradually(model, x, y, 0.5, epochs=1, batch_size=2)
    with pytest.raises(QuantizationTypeError, match=r"schedule\(step\) must return \(should_prune: bool"):
        prune.prune_gradually(model, x, y, lambda t: 0.5, epochs=1, batch_size=2)
    with pytest.raises(QuantizationValueError, match=r"schedule's sparsity at step 1 must be in \[0, 1\), got 1.5"):
        prune.prune_gradually(model, x, y, lambda t: (True, 1.5), epochs=1, batch_size=2)
    assert model[0].weight_transform is None, "a failed run must detach its masks"
    with pytest.raises(QuantizationTypeError, match="optimizer must be a refquant.nn Optimizer"):
        prune.prune_gradually(model, x, y, lambda t: (False, 0.0), epochs=1, batch_size=2, optimizer="sgd")
    with pytest.raises(QuantizationValueError, match="scope must be one of"):
        prune.prune_gradually(model, x, y, lambda t: (False, 0.0), epochs=1, batch_size=2, scope="net")
