r"""Exact round-half-to-even of ``acc * M`` in int64, for the Numba ``exact_rne`` kernel (internal).

$M = N \cdot 2^{E} / D$ with $N < 2^{48}$ and $D < 2^{24}$ odd (every product/quotient of float32
scales has this form). The product $|acc| \cdot N < 2^{79}$ is held as two limbs
$p_{hi} 2^{32} + p_{lo}$; for $E < 0$ it is shifted right by $k = -E$ keeping the discarded bits'
verdict (above, at or below half), then divided by $D$; the remainders decide the rounding, ties
to even. Results whose magnitude exceeds $2^{38}$ (decided by a float64 estimate with relative
error below $2^{-50}$) saturate to $\pm 2^{38}$: far beyond every 8/16-bit output range, so the
final clamp is unchanged, and every intermediate then stays below $2^{63}$.
``tests/test_kernels_requant.py`` checks it against ``fractions.Fraction``.
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import UnsupportedError


def exact_parts(m: np.ndarray):
    """Fractions -> (N, D, E, M64) with M = N * 2^E / D, N and D odd (Numba kernel's form)."""
    n, d, e = (np.empty(m.shape, np.int64) for _ in range(3))
    m64 = np.empty(m.shape, np.float64)
    for i, fr in enumerate(m):
        num, den, ex = fr.numerator, fr.denominator, 0
        while num % 2 == 0:
            num //= 2
            ex += 1
        while den % 2 == 0:
            den //= 2
            ex -= 1
        if num >= 2 ** 48 or den >= 2 ** 24:
            raise UnsupportedError(
                f"multiplier {fr} has an odd numerator >= 2^48 or denominator >= 2^24; the Numba kernel handles "
                "products of float32 scales only, use requantize_reference")
        n[i], d[i], e[i], m64[i] = num, den, ex, float(fr)
    return n, d, e, m64


@numba.njit(cache=True)
def exact_rne_scalar(acc, n, d, e, m64):
    """RNE(acc * n * 2^e / d) exactly (n < 2^48, d < 2^24 odd); saturates at +-2^38."""
    if acc == 0:
        return np.int64(0)
    a = np.int64(abs(acc))
    sign = np.int64(1) if acc > 0 else np.int64(-1)
    if np.float64(a) * m64 > 274877906944.0:  # 2^38: saturated whatever the rounding
        return sign * np.int64(274877906944)
    up = False
    tie = False
    if e >= 0:
        x = (a * n) << e  # < 2^63 by the saturation test
        q0 = x // d
        rem2 = np.int64(2) * (x - q0 * d)
        up = rem2 > d
        tie = rem2 == d
    else:
        k = -e
        n1 = n >> np.int64(32)
        n0 = n & np.int64(0xFFFFFFFF)
        low = a * n0  # < 2^63
        p_hi = a * n1 + (low >> np.int64(32))  # P = p_hi * 2^32 + p_lo, p_hi < 2^49
        p_lo = low & np.int64(0xFFFFFFFF)
        if k < 32:
            s = (p_hi << (32 - k)) | (p_lo >> k)
            r_k = p_lo & ((np.int64(1) << k) - np.int64(1))
            half = np.int64(1) << (k - 1)
            cmp = 1 if r_k > half else (0 if r_k == half else -1)
            nonzero = r_k != 0
        elif k == 32:
            s = p_hi
            cmp = 1 if p_lo > 2147483648 else (0 if p_lo == 2147483648 else -1)
            nonzero = p_lo != 0
        elif k - 33 >= 62:
            s = np.int64(0)
            cmp = -1
            nonzero = (p_hi | p_lo) != 0
        else:
            s = p_hi >> (k - 32)
            bit = (p_hi >> (k - 33)) & np.int64(1)
            below = ((p_hi & ((np.int64(1) << (k - 33)) - np.int64(1))) | p_lo) != 0
            cmp = -1 if bit == 0 else (1 if below else 0)
            nonzero = bit != 0 or below
        q0 = s // d
        u = np.int64(2) * (s - q0 * d) - d
        if u > 0:
            up = True
        elif u == 0:
            up = nonzero
            tie = not nonzero
        elif u == -1:
            up = cmp > 0
            tie = cmp == 0
    if tie:
        up = (q0 & np.int64(1)) == 1
    return sign * (q0 + (np.int64(1) if up else np.int64(0)))


@numba.njit(cache=True)
def exact_kernel(acc, n, d, e, m64, zp, lo, hi):
    out = np.empty(acc.shape, np.int64)
    for i in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            r = exact_rne_scalar(acc[i, c], n[c], d[c], e[c], m64[c])
            out[i, c] = min(max(r + zp[c], lo), hi)
    return out
