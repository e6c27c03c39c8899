"""Advanced PTQ rounding, one layer at a time: the grid, the moments, GPTQ, AdaRound, the clipped
normal mean of analytical bias correction, and the errors of bad input.

Oracles: the weight-only flow's own codes (the grid), a direct mean over columns (the moments),
``refquant.nn.Conv2d`` (the im2col columns), GPTQ's eq. (1) re-inverting $H_F$ at every column
(against the Cholesky, lazy-batch version), central finite differences (AdaRound's gradient),
numerical quadrature (the clipped normal mean). Model-level behaviour is in
``test_ptq_advanced_models.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from refquant import models, nn, ptq
from refquant.errors import QuantizationTypeError, QuantizationValueError, ShapeError
from refquant.passes import prepare_for_quantization
from refquant.ptq import advanced as A
from refquant.qmodel import Node
from refquant.qmodel.nodes import dequantize_weight

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small matrices: BLAS threads only add synchronization on a shared 2-core machine."""
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        yield


def _layer(o=12, k=24, n=600, seed=0, scale=0.1):
    """A weight ``(o, k)`` and correlated inputs ``(k, n)`` of a trained layer's magnitudes."""
    rng = np.random.default_rng(seed)
    w = (scale * rng.normal(size=(o, k))).astype(np.float32)
    mix = rng.normal(size=(k, k)) / np.sqrt(k) + np.eye(k)
    x = np.maximum(mix @ rng.normal(size=(k, n)) + 0.5, 0)  # ReLU'd, correlated, mean > 0
    return w, x


# ------------------------------------------------------------------------------------------ grid
@pytest.mark.parametrize("name, group_size", [("mlp", None), ("mlp", 16), ("cnn", 8), ("mobilenet", 8)])
def test_grid_of_a_weight_only_node_is_its_rtn(name, group_size):
    model = models.load_reference_model(name)
    qm = ptq.quantize_weights(model, bits=4, group_size=group_size)
    prepared = dict(prepare_for_quantization(model, keep_names=True).named_modules())
    for node in qm.nodes:
        if node.op not in ("linear", "conv2d"):
            continue
        grid = A.grid_of_node(qm, node)
        w = prepared[node.name].weight.value
        q = node.params["weight"]
        np.testing.assert_array_equal(grid.rtn(w.reshape(w.shape[0], -1)).reshape(q.shape), q,
                                      err_msg=f"{node.name}: the grid's RTN is not the flow's codes")
        np.testing.assert_array_equal(grid.dequantize(q.reshape(grid.shape)).astype(np.float32).reshape(q.shape),
                                      dequantize_weight(node), err_msg=f"{node.name}: eq. (1) differs")
        np.testing.assert_array_equal(A.symmetric_grid(w, bits=4, group_size=group_size).scale, grid.scale)
        assert (grid.qmin, grid.qmax) == (-7, 7)


def _one_layer_static(profile, isa="auto"):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4, rng=np.random.default_rng(1)))
    x = np.random.default_rng(2).normal(size=(32, 1, 4, 4)).astype(np.float32)
    return ptq.quantize_static(model, x, profile=profile, isa=isa)


@pytest.mark.parametrize("profile, isa, expected", [("tflite_reference", "auto", (-127, 127)),
                                                    ("onnxruntime", "avx2", (-64, 64)),
                                                    ("onnxruntime", "vnni", (-127, 127)),
                                                    ("pytorch_fbgemm", "auto", (-128, 127))])
def test_code_range_is_the_tools(profile, isa, expected):
    qm = _one_layer_static(profile, isa)
    node = qm.node("1")
    assert A.code_range(qm, node) == expected
    grid = A.grid_of_node(qm, node)
    np.testing.assert_array_equal(grid.scale[:, 0], node.params["weight_scale"])


def test_code_range_of_a_narrow_qat_model_is_its_bits():
    from refquant import qat

    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4, rng=np.random.default_rng(1)))
    x = np.random.default_rng(2).normal(size=(32, 1, 4, 4)).astype(np.float32)
    for bits, expected in ((3, (-3, 3)), (8, (-127, 127))):
        qm = qat.convert(qat.calibrate(qat.prepare_qat(model, profile="tflite_reference", weight_bits=bits), x))
        assert A.code_range(qm, qm.node("1")) == expected


# ------------------------------------------------------------------------------------------ moments
def test_moments_output_error_is_the_mean_over_columns():
    w, x = _layer(o=5, k=7, n=50)
    rng = np.random.default_rng(3)
    x_quant = x + 0.05 * rng.normal(size=x.shape)
    w_hat = w + 0.01 * rng.normal(size=w.shape)
    m = A.LayerMoments.from_columns(x_quant, x)
    direct = np.mean(np.sum((w_hat @ x_quant - w.astype(np.float64) @ x) ** 2, axis=0))
    assert m.output_error(w_hat, w) == pytest.approx(direct, rel=1e-10)
    np.testing.assert_allclose(m.mean_q, x_quant.mean(axis=1), rtol=1e-12)


@pytest.mark.parametrize("groups, stride, padding, dilation", [(1, 1, 1, 1), (2, 2, (0, 1, 2, 1), 1), (4, 1, 2, 2)])
def test_layer_columns_are_what_the_weights_multiply(groups, stride, padding, dilation):
    conv = nn.Conv2d(4, 8, 3, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     rng=np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(2, 4, 7, 6)).astype(np.float32)
    top, bottom, left, right = conv.padding
    node = Node("c", "conv2d", ("x",), "y", {"stride": list(conv.stride), "padding": [top, left, bottom, right],
                                             "dilation": list(conv.dilation), "groups": groups},
                {"weight": np.zeros(conv.weight.shape, np.int8)})
    cols = A.layer_columns(node, x)  # (G, K, M)
    w = conv.weight.value.astype(np.float64).reshape(groups, 8 // groups, -1)
    y = np.concatenate([w[g] @ cols[g] for g in range(groups)])  # (O, M), M in (n, h, w) order
    expected = conv(x) - conv.bias.value[None, :, None, None]
    np.testing.assert_allclose(y.reshape(8, 2, *expected.shape[2:]).transpose(1, 0, 2, 3), expected, atol=1e-5)


# ------------------------------------------------------------------------------------------ GPTQ
def _naive_gptq(w, h, grid, damp=0.01, act_order=False):
    """GPTQ's eq. (1) as written: invert $H_F$ over the columns not yet rounded, at every column."""
    w = w.astype(np.float64).copy()
    h = h + damp * np.mean(np.diag(h)) * np.eye(h.shape[0])
    order = list(np.argsort(-np.diag(h), kind="stable")) if act_order else list(range(w.shape[1]))
    q = np.zeros(w.shape, np.int64)
    for n, i in enumerate(order):
        free = order[n:]  # i first
        h_inv = np.linalg.inv(h[np.ix_(free, free)])
        q[:, i] = grid.rtn(w[:, [i]], [i])[:, 0]
        err = (w[:, i] - grid.dequantize(q[:, [i]], [i])[:, 0]) / h_inv[0, 0]
        w[:, free] -= np.outer(err, h_inv[0])
    return q


@pytest.mark.parametrize("group_size", [None, 8])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_equals_its_equation_solved_column_by_column(group_size, act_order):
    w, x = _layer()
    grid = A.symmetric_grid(w, bits=4, group_size=group_size)
    h = 2 * A.LayerMoments.from_columns(x).xx
    expected = _naive_gptq(w, h, grid, act_order=act_order)
    for block_size in (1, 5, 128):
        got = A.gptq_codes(w, h, grid, block_size=block_size, act_order=act_order)
        assert got.shape == w.shape and got.dtype == np.int64
        np.testing.assert_array_equal(got, expected, err_msg=f"block_size={block_size}: lazy batches differ from "
                                                             f"eq. (1) solved per column")


@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_with_a_diagonal_hessian_is_rtn(act_order):
    w, _ = _layer()
    rng = np.random.default_rng(4)
    h = np.diag(rng.uniform(0.5, 2.0, size=w.shape[1]))
    for group_size in (None, 8):
        grid = A.symmetric_grid(w, bits=3, group_size=group_size)
        np.testing.assert_array_equal(A.gptq_codes(w, h, grid, block_size=7, act_order=act_order), grid.rtn(w))


def test_gptq_rounds_a_dead_input_to_nearest():
    w, x = _layer()
    x[3] = 0  # input 3 never fires
    grid = A.symmetric_grid(w, bits=4)
    q = A.gptq_codes(w, 2 * A.LayerMoments.from_columns(x).xx, grid)
    np.testing.assert_array_equal(q[:, 3], grid.rtn(w)[:, 3])


@pytest.mark.parametrize("method", ["gptq", "adaround"])
@pytest.mark.parametrize("bits, group_size", [(4, None), (4, 8), (3, None), (2, 8)])
def test_methods_beat_rtn_on_a_layer_and_stay_on_the_grid(method, bits, group_size):
    w, x = _layer(o=16, k=32, n=800, seed=bits)
    grid = A.symmetric_grid(w, bits=bits, group_size=group_size)
    m = A.LayerMoments.from_columns(x)
    rtn = grid.rtn(w)
    if method == "gptq":
        q = A.gptq_codes(w, 2 * m.xx, grid)
    else:
        q = A.adaround_codes(w, m, grid, iters=500)
        floor = np.floor((w / grid.scale).astype(np.float64)).astype(np.int64)
        assert set(np.unique(q - np.clip(floor, grid.qmin, grid.qmax))) <= {0, 1}, "AdaRound goes up or down only"
    assert q.min() >= grid.qmin and q.max() <= grid.qmax
    err_rtn, err = m.output_error(grid.dequantize(rtn), w), m.output_error(grid.dequantize(q), w)
    assert err < 0.9 * err_rtn, f"{method}: layer output error {err:.4g} is not below RTN's {err_rtn:.4g}"


# ------------------------------------------------------------------------------------------ AdaRound
@pytest.mark.parametrize("beta, reg_weight", [(2.0, 0.01), (20.0, 0.5), (1.0, 0.0)])
def test_adaround_gradient_matches_finite_differences(beta, reg_weight):
    w, x = _layer(o=3, k=5, n=40)
    w[0, 0] = np.abs(w).max() * 1.0  # one weight on the top code: clamped from above, zero gradient
    grid = A.symmetric_grid(w, bits=3)
    rng = np.random.default_rng(5)
    m = A.LayerMoments.from_columns(x, x + 0.1 * rng.normal(size=x.shape))
    v = rng.uniform(-2, 2, size=w.shape)  # h(v) strictly inside (0, 1): no kink nearby
    loss, grad = A.adaround_objective(v, w, grid, m, beta=beta, reg_weight=reg_weight)
    assert isinstance(loss, float) and grad.shape == w.shape
    eps = 1e-6
    numeric = np.zeros_like(v)
    for idx in np.ndindex(v.shape):
        d = np.zeros_like(v)
        d[idx] = eps
        numeric[idx] = (A.adaround_objective(v + d, w, grid, m, beta=beta, reg_weight=reg_weight)[0]
                        - A.adaround_objective(v - d, w, grid, m, beta=beta, reg_weight=reg_weight)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8 * max(1.0, abs(loss)))
    assert grad[0, 0] == pytest.approx(numeric[0, 0], abs=1e-9)


def test_adaround_learns_a_stack_of_groups_as_separate_layers():
    """The model-level call learns a grouped convolution's groups in one stack (Adam is elementwise)."""
    from refquant.ptq.advanced.adaptive_rounding import _learn, _options, _problem

    problems = []
    for seed in (0, 1, 2):
        w, x = _layer(o=4, k=9, n=100, seed=seed)
        problems.append((w, A.symmetric_grid(w, bits=3), A.LayerMoments.from_columns(x, x * 0.98)))
    separate = [A.adaround_codes(w, m, g, iters=150) for w, g, m in problems]
    stack = lambda f: np.stack([f(*p) for p in problems])  # noqa: E731
    joint = _learn(_problem(stack(lambda w, g, m: w.astype(np.float64)), stack(lambda w, g, m: g.scale),
                            stack(lambda w, g, m: g.zero_point), -3, 3, stack(lambda w, g, m: m.xx),
                            stack(lambda w, g, m: m.xf), stack(lambda w, g, m: m.ff)),
                   *_options(150, 0.01, 0.01, (20.0, 2.0), 0.2))
    np.testing.assert_array_equal(joint, np.stack(separate))


def test_adaround_objective_at_the_start_is_the_float_layer():
    """$v_0$ puts $h$ at the fractional part: $\\tilde W = W$, so with $\\hat x = x$ the loss is the regularizer."""
    w, x = _layer(o=4, k=6, n=30)
    grid = A.symmetric_grid(w, bits=4)
    m = A.LayerMoments.from_columns(x)
    ratio = (w / grid.scale).astype(np.float64)
    frac = ratio - np.floor(ratio)
    v0 = -np.log((A.adaptive_rounding.ZETA - A.adaptive_rounding.GAMMA) / (frac - A.adaptive_rounding.GAMMA) - 1)
    loss, _ = A.adaround_objective(v0, w, grid, m, reg_weight=0.0)
    assert loss == pytest.approx(0.0, abs=1e-10)


# ------------------------------------------------------------------------------------------ bias correction's E[x]
@pytest.mark.parametrize("lo, hi", [(-math.inf, math.inf), (0.0, math.inf), (0.0, 6.0), (-1.0, 0.5)])
def test_clipped_normal_mean_against_quadrature(lo, hi):
    mean = np.array([-3.0, -0.5, 0.0, 0.7, 2.5, 8.0])
    std = np.array([1.0, 0.3, 2.0, 1.5, 0.0, 4.0])
    got = A.clipped_normal_mean(mean, std, lo, hi)
    for mu, sd, g in zip(mean, std, got, strict=True):
        if sd == 0:
            assert g == np.clip(mu, lo, hi)
            continue
        z = np.linspace(-12, 12, 200001)
        pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        expected = np.trapezoid(np.clip(mu + sd * z, lo, hi) * pdf, z)
        assert g == pytest.approx(expected, abs=1e-8), (mu, sd)


def test_clipped_normal_mean_is_dfqs_relu_formula():
    mu, sd = np.array([0.4, -1.2]), np.array([0.9, 2.0])
    phi = np.exp(-0.5 * (mu / sd) ** 2) / math.sqrt(2 * math.pi)
    big_phi = 0.5 * (1 + np.vectorize(math.erf)(mu / sd / math.sqrt(2)))
    np.testing.assert_allclose(A.clipped_normal_mean(mu, sd, 0.0), sd * phi + mu * big_phi, rtol=1e-12)


# ------------------------------------------------------------------------------------------ bad input
def _grid():
    return A.symmetric_grid(np.ones((2, 3), np.float32), bits=4)


def _tiny_qmodel():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, rng=np.random.default_rng(0)))
    return ptq.quantize_weights(model, bits=4), model


X_TINY = np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 1, 2, 2)


def _nan_model():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, rng=np.random.default_rng(0)))
    model[1].weight.value[0, 0] = np.nan
    return model


BAD = [
    (lambda: A.symmetric_grid(np.ones((2, 8)), bits=1), QuantizationValueError, "bits must be in [2, 8], got 1"),
    (lambda: A.symmetric_grid(np.ones((2, 8)), bits=9), QuantizationValueError, "bits must be in [2, 8], got 9"),
    (lambda: A.symmetric_grid(np.ones((2, 8)), group_size=3), QuantizationValueError, "group_size must divide"),
    (lambda: A.symmetric_grid(np.full((2, 8), np.nan)), QuantizationValueError, "w must be finite"),
    (lambda: A.symmetric_grid(np.ones(8)), ShapeError, "w must be a non-empty"),
    (lambda: A.quantize_weights_advanced(models.build_mlp(), X_TINY, bits=9), QuantizationValueError, "bits"),
    (lambda: A.quantize_weights_advanced(models.build_mlp(), np.zeros((4, 1, 8, 8), np.float32), group_size=48),
     QuantizationValueError, "group_size must divide"),
    (lambda: A.quantize_weights_advanced(_nan_model(), X_TINY), QuantizationValueError, "'1.weight' must be finite"),
    (lambda: A.quantize_weights_advanced(_tiny_qmodel()[1], X_TINY, method="best"), QuantizationValueError,
     "method must be one of"),
    (lambda: A.quantize_weights_advanced(_tiny_qmodel()[1], None), QuantizationValueError,
     "calibration_data must be"),
    (lambda: A.quantize_weights_advanced(_tiny_qmodel()[1], X_TINY, damp=0.1, iters=3), QuantizationTypeError,
     "method 'gptq' takes"),
    (lambda: A.gptq(*_tiny_qmodel(), np.zeros((0, 1, 2, 2), np.float32)), QuantizationValueError,
     "calibration_data must be an (N, ...) array with at least one sample, got shape (0, 1, 2, 2)"),
    (lambda: A.gptq(*_tiny_qmodel(), np.full((2, 1, 2, 2), np.nan, np.float32)), QuantizationValueError,
     "calibration_data must be finite"),
    (lambda: A.adaround(*_tiny_qmodel(), np.zeros((2, 1, 3, 3), np.float32)), ShapeError,
     "calibration_data must have the shape the model takes"),
    (lambda: A.gptq(*_tiny_qmodel(), [[1, 2]]), QuantizationTypeError, "calibration_data must be a float array"),
    (lambda: A.gptq("model", _tiny_qmodel()[1], X_TINY), QuantizationTypeError, "qmodel must be a QuantizedModel"),
    (lambda: A.gptq(_tiny_qmodel()[0], "m", X_TINY), QuantizationTypeError, "model must be a refquant.nn Module"),
    (lambda: A.gptq(_tiny_qmodel()[0], models.build_mlp(), X_TINY), QuantizationValueError,
     "model must be the float model qmodel was made from"),
    (lambda: A.gptq(*_tiny_qmodel(), X_TINY, damp=2.0), QuantizationValueError, "damp must be in [0, 1]"),
    (lambda: A.gptq(*_tiny_qmodel(), X_TINY, block_size=0), QuantizationValueError, "block_size must be"),
    (lambda: A.gptq_codes(np.ones((2, 3)), np.ones((3, 2)), _grid()), ShapeError, "hessian must have shape (K, K)"),
    (lambda: A.gptq_codes(np.ones((2, 3)), np.triu(np.ones((3, 3))), _grid()), QuantizationValueError,
     "hessian must be symmetric"),
    (lambda: A.gptq_codes(np.ones((2, 3)), -np.eye(3), _grid()), QuantizationValueError, "diagonal >= 0"),
    (lambda: A.gptq_codes(np.full((2, 3), np.inf), np.eye(3), _grid()), QuantizationValueError, "w must be finite"),
    (lambda: A.gptq_codes(np.ones((2, 3)), np.eye(3), "grid"), QuantizationTypeError, "grid must be a WeightGrid"),
    (lambda: A.adaround(*_tiny_qmodel(), X_TINY, iters=0), QuantizationValueError, "iters must be an integer >= 1"),
    (lambda: A.adaround(*_tiny_qmodel(), X_TINY, lr=-1.0), QuantizationValueError, "lr must be > 0"),
    (lambda: A.adaround(*_tiny_qmodel(), X_TINY, beta=(2, 20)), QuantizationValueError, "beta must decay"),
    (lambda: A.adaround(*_tiny_qmodel(), X_TINY, beta=(20, 0.5)), QuantizationValueError, "beta must be >= 1"),
    (lambda: A.adaround(*_tiny_qmodel(), X_TINY, warmup=1.0), QuantizationValueError, "warmup must be in [0, 1)"),
    (lambda: A.adaround_codes(np.ones((2, 3)), A.LayerMoments.from_columns(np.ones((3, 4)), second_order=False),
                              _grid()), QuantizationTypeError, "moments must be LayerMoments with second moments"),
    (lambda: A.bias_correction(*_tiny_qmodel(), X_TINY, mode="exact"), QuantizationValueError, "mode must be one of"),
    (lambda: A.bias_correction(*_tiny_qmodel()), QuantizationValueError,
     "calibration_data must be an (N, ...) float array for mode='empirical', got None"),
    (lambda: A.bias_correction(*_tiny_qmodel(), X_TINY, mode="analytical"), QuantizationValueError,
     "calibration_data must be None for mode='analytical'"),
    (lambda: A.clipped_normal_mean(0.0, -1.0), QuantizationValueError, "std must be >= 0"),
    (lambda: A.clipped_normal_mean(0.0, 1.0, 1.0, 1.0), QuantizationValueError, "lo must be < hi"),
    (lambda: A.clipped_normal_mean(np.nan, 1.0), QuantizationValueError, "mean and std must be finite"),
    (lambda: A.LayerMoments.from_columns(np.ones((3, 0))), ShapeError, "x_quant must be (K, M) columns"),
    (lambda: A.WeightGrid(np.ones((2, 3)), np.zeros((2, 3), np.int64), 1, -1), QuantizationValueError,
     "qmin must be < qmax"),
]


@pytest.mark.parametrize("call, error, message", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_input_is_a_named_error(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
