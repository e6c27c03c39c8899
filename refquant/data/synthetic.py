"""Seeded synthetic images for benchmarks that need larger tensors than 8×8 digits.

Each class $c$ owns a smooth pattern, a sum of $K$ separable low-frequency cosines
per channel, scaled to unit root-mean-square over the image:

$$P_c[ch, h, w] = \\frac{1}{r_{c,ch}} \\sum_{k=1}^{K} a_k\\,
  \\cos\\!\\Big(2\\pi f_k \\tfrac{h + 1/2}{H} + \\phi_k\\Big)
  \\cos\\!\\Big(2\\pi g_k \\tfrac{w + 1/2}{W} + \\psi_k\\Big)$$

with integer frequencies $f_k, g_k \\in \\{0, 1, 2, 3\\}$ (cycles per image, so the
same class looks alike at 32×32 and at 224×224), and a sample is

$$x_i = s_i\\,P_{y_i} + \\sigma\\,\\varepsilon_i,\\quad s_i \\sim U[0.5, 1.5],\\;
  \\varepsilon_i \\sim \\mathcal{N}(0, I).$$

The patterns depend only on ``shape``, the class and ``task_seed``; ``seed`` draws
the labels, the amplitudes and the noise. Two calls with different ``seed`` therefore
give a training and a test set *of the same task*. Not a substitute for real images:
it exercises shapes, memory and throughput, and gives a model something learnable.
"""

from __future__ import annotations

import operator

import numpy as np

from .._validate import as_real_scalar, check_allocation, describe
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError

__all__ = ["synthetic_images"]

_TERMS = 3                 # K cosine products per channel
_MAX_FREQUENCY = 3         # f, g in {0, ..., 3} cycles per image
_CHUNK_ELEMENTS = 1 << 22  # samples are generated in chunks of <= 4 Mi values (16 MB float32)


def _as_int(value, name: str, minimum: int) -> int:
    """``value`` as a Python int >= ``minimum`` (bool rejected), or a refquant error."""
    if isinstance(value, bool):
        raise QuantizationTypeError(f"{name} must be an int, got bool {value}")
    try:
        result = operator.index(value)
    except TypeError as exc:
        raise QuantizationTypeError(f"{name} must be an int, got {type(value).__name__}") from exc
    if result < minimum:
        raise QuantizationValueError(f"{name} must be >= {minimum}, got {result}")
    return result


def _class_factors(num_classes: int, channels: int, height: int, width: int,
                   task_seed: int, compute: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Factors ``u`` (classes, C, H, K) and ``v`` (classes, C, K, W) with ``u @ v`` = $P_c$.

    Class ``c`` draws its parameters from ``default_rng([0, task_seed, c])``, so its
    pattern does not depend on ``num_classes`` or on the number of samples.
    """
    rows = (np.arange(height) + 0.5) / height  # (H,) float64
    cols = (np.arange(width) + 0.5) / width    # (W,) float64
    u = np.empty((num_classes, channels, height, _TERMS), dtype=np.float64)
    v = np.empty((num_classes, channels, _TERMS, width), dtype=np.float64)
    for c in range(num_classes):
        rng = np.random.default_rng([0, task_seed, c])
        f, g = rng.integers(0, _MAX_FREQUENCY + 1, size=(2, channels, _TERMS))
        phi, psi = rng.uniform(0.0, 2.0 * np.pi, size=(2, channels, _TERMS))
        amplitude = rng.standard_normal((channels, _TERMS))  # (C, K) float64
        uc = np.cos(2 * np.pi * f[..., None] * rows + phi[..., None])  # (C, K, H)
        vc = np.cos(2 * np.pi * g[..., None] * cols + psi[..., None])  # (C, K, W)
        # Mean square of sum_k a_k u_k v_k^T without forming it (H*W could be large):
        # (1/HW) sum_{k,l} a_k a_l (u_k . u_l)(v_k . v_l).
        gram = (uc @ uc.transpose(0, 2, 1)) * (vc @ vc.transpose(0, 2, 1))  # (C, K, K)
        mean_square = np.einsum("ck,ckl,cl->c", amplitude, gram, amplitude) / (height * width)
        # Guard: a pattern whose terms cancel (vanishingly unlikely) keeps its tiny scale.
        rms = np.sqrt(np.maximum(mean_square, 1e-6))  # (C,)
        u[c] = (uc * (amplitude / rms[:, None])[..., None]).transpose(0, 2, 1)
        v[c] = vc
    return u.astype(compute), v.astype(compute)


def synthetic_images(n: int, shape: tuple[int, int, int] = (3, 32, 32), *, num_classes: int = 10,
                     seed: int = 0, dtype=np.float32, noise: float = 0.5,
                     task_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` labelled synthetic images, deterministically.

    Labels are balanced (``arange(n) % num_classes``, then shuffled). Values are
    roughly zero-mean with unit-RMS signal plus noise of standard deviation
    ``noise``, like normalized real images; no clipping.

    Memory: the output plus a few work buffers of at most 4 Mi values (16 MB)
    each, never a float64 copy of the whole batch: ``synthetic_images(64,
    (3, 224, 224))`` returns 38.5 MB and peaks at about 90 MB (tracemalloc).

    Determinism: the same arguments give the same bits on the same NumPy version
    (NumPy's ``Generator`` streams; float32 output is computed in float32 and
    float64 in float64, so the two differ beyond rounding).

    Args:
        n: Number of images, >= 0.
        shape: ``(C, H, W)`` of one image, each >= 1.
        num_classes: Number of classes, >= 1.
        seed: Draws labels, amplitudes and noise (>= 0).
        dtype: Floating dtype of ``x`` (float16 is computed in float32, then cast).
        noise: Standard deviation $\\sigma$ of the added Gaussian noise, >= 0.
        task_seed: Draws the class patterns (>= 0); keep it fixed across train/test.

    Returns:
        ``(x, y)``: ``x`` (n, C, H, W) of ``dtype``, NCHW; ``y`` (n,) int64 in
        ``[0, num_classes)``.

    Raises:
        QuantizationTypeError: a count or seed is not an int; ``dtype`` is not floating.
        QuantizationValueError: a count, seed or ``noise`` is out of range.
        ShapeError: ``shape`` is not three positive ints.

    Example:
        >>> x, y = synthetic_images(4, (3, 224, 224), seed=1)
        >>> x.shape, x.dtype, y.tolist()  # doctest: +SKIP
        ((4, 3, 224, 224), dtype('float32'), [...])
    """
    n = _as_int(n, "n", 0)
    num_classes = _as_int(num_classes, "num_classes", 1)
    seed = _as_int(seed, "seed", 0)
    task_seed = _as_int(task_seed, "task_seed", 0)
    if isinstance(shape, (str, bytes, dict)):
        raise ShapeError(f"shape must be a (C, H, W) tuple, got {describe(shape)}")
    try:
        dims = tuple(shape)
    except TypeError as exc:
        raise ShapeError(f"shape must be a (C, H, W) tuple, got {describe(shape)}") from exc
    if len(dims) != 3:
        raise ShapeError(f"shape must be a (C, H, W) tuple of 3 ints, got {describe(shape)}")
    channels, height, width = (_as_int(d, "shape entries", 1) for d in dims)
    try:
        out_dtype = np.dtype(dtype) if dtype is not None else None
    except (TypeError, ValueError, SyntaxError) as exc:
        raise QuantizationTypeError(f"dtype must be a NumPy dtype, got {describe(dtype)}") from exc
    if out_dtype is None or out_dtype.kind != "f":
        got = out_dtype if out_dtype is not None else describe(dtype)
        raise QuantizationTypeError(f"dtype must be a floating dtype, got {got}")
    out_dtype = out_dtype.newbyteorder("=")
    noise = as_real_scalar(noise, "noise", finite=False)
    if not (np.isfinite(noise) and noise >= 0.0):
        raise QuantizationValueError(f"noise must be a finite float >= 0, got {noise}")
    check_allocation(n * channels * height * width, out_dtype.itemsize, "the images n * C * H * W (n, shape)")
    check_allocation(num_classes * channels * (height + width) * _TERMS, 8,
                     "the class patterns num_classes * C * (H + W) * 3 (num_classes, shape)")

    compute = np.dtype(np.float64) if out_dtype == np.float64 else np.dtype(np.float32)
    u, v = _class_factors(num_classes, channels, height, width, task_seed, compute)

    rng = np.random.default_rng([1, seed])
    y = rng.permutation(np.arange(n, dtype=np.int64) % num_classes)  # (n,) int64
    scale = rng.uniform(0.5, 1.5, size=n).astype(compute)            # (n,) compute
    x = np.empty((n, channels, height, width), dtype=out_dtype)      # (n, C, H, W)
    chunk = max(1, _CHUNK_ELEMENTS // (channels * height * width))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        rows = y[start:stop]
        clean = (u[rows] * scale[start:stop, None, None, None]) @ v[rows]  # (b, C, H, W)
        eps = rng.standard_normal(clean.shape, dtype=compute)              # (b, C, H, W)
        eps *= compute.type(noise)
        clean += eps
        x[start:stop] = clean  # cast to out_dtype (float16: round to nearest even)
    return x, y
