"""The list of exercises: folder, the file you edit, what to read, and hints shown when a check fails.

Exercises are done in order; a quiz follows every few of them.
"""

EXERCISES = [
    {
        "id": "01",
        "folder": "01_rounding_and_clamping",
        "file": "rounding.py",
        "title": "Rounding and clamping",
        "read": "docs/learn/rounding-and-ranges.md",
        "hints": [
            "Split x into n = np.floor(x) and the fraction f = x - n, and decide from f (Learn 1, section 2).",
            "Round half to even: go up when f > 0.5, or when f == 0.5 and n is odd (np.fmod(n, 2) != 0).",
            "Round half away from zero: work on a = np.abs(x), round half up there, "
            "then put the sign back with np.copysign (keeps -0.0 and the dtype).",
            "Never compute np.floor(x + 0.5) in float32: x = 0.49999997 gives 1.",
            "Keep NaN and +-inf: np.where(np.isfinite(x), rounded, x). Keep the dtype: .astype(x.dtype).",
            "int_range: signed b bits is [-2**(b-1), 2**(b-1) - 1]; unsigned [0, 2**b - 1]; narrow adds 1 to qmin.",
            "saturate: np.clip on an int64 array, never .astype(np.int8) (that wraps).",
        ],
    },
    {
        "id": "02",
        "folder": "02_quantize_dequantize",
        "file": "quantize.py",
        "title": "Quantize and dequantize (ONNX QuantizeLinear / DequantizeLinear)",
        "read": "docs/learn/affine-and-symmetric.md",
        "hints": [
            "quantize: x.astype(np.float32) / np.float32(scale), then np.rint (half to even), "
            ".astype(np.int64), + zero_point, np.clip to [qmin, qmax].",
            "Divide, do not multiply by 1/scale, and divide in float32, not float64: both change ties.",
            "Add the zero point after rounding: with an odd zero point, adding it before flips ties.",
            "dequantize: (q.astype(np.int64) - zero_point).astype(np.float32) * np.float32(scale).",
            "quantize_per_channel: reshape scales and zero points to [1, .., C, .., 1] with C at "
            "position axis % x.ndim, then the same formula broadcasts.",
            "fake_quantize is dequantize(quantize(...)).",
        ],
    },
    {
        "id": "03",
        "folder": "03_choosing_scale_and_zero_point",
        "file": "choose.py",
        "title": "Choosing the scale and zero point",
        "read": "docs/learn/affine-and-symmetric.md",
        "hints": [
            "Convert min_val and max_val to np.float32 first; every later step stays float32.",
            "Widen the range to contain zero: r_min = min(min_val, 0), r_max = max(max_val, 0) (eq. (6)).",
            "Affine: scale = max((r_max - r_min) / np.float32(qmax - qmin), EPS); "
            "zero_point = qmin - np.rint(r_min / scale), clamped, as int.",
            "Symmetric: the divisor is np.float32((qmax - qmin) / 2), i.e. 127.5 for [-128, 127]; "
            "the zero point is 0 for signed ranges and (qmin + qmax + 1) // 2 for unsigned ones.",
            "An all-zero range gives scale EPS, not 0 and not 1.",
        ],
    },
    {
        "id": "04",
        "folder": "04_int32_matmul_with_zero_points",
        "file": "matmul.py",
        "title": "An int32 matmul with zero points",
        "read": "docs/learn/quantized-matmul.md",
        "hints": [
            "Cast to np.int64 before subtracting a zero point: uint8 3 - 4 is 255, and int8 products wrap.",
            "matmul_int32: (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb), then .astype(np.int32). "
            "A per-column zb of shape (N,) broadcasts over the rows of b by itself.",
            "row_and_column_sums: a.astype(np.int64).sum(axis=1) and b.astype(np.int64).sum(axis=0).",
            "matmul_int32_folded is Learn 3 eq. (4): P - zb * r[:, None] - za * c[None, :] + K * za * zb, "
            "with P = a @ b of the raw codes (in int64).",
            "matmul_pairwise_sat16: multiply the RAW codes; pair k = 2i with 2i + 1 (a[:, 0::2] and a[:, 1::2]), "
            "np.clip each pair sum to [-32768, 32767], sum the pairs, then add the zero-point terms of eq. (4).",
            "Odd K: append a zero column to a and a zero row to b, so that the last product pairs with 0.",
        ],
    },
    {
        "id": "05",
        "folder": "05_quantize_multiplier_and_srdhm",
        "file": "fixedpoint.py",
        "title": "quantize_multiplier, SRDHM and RDBPOT",
        "read": "docs/learn/fixed-point-requantization.md",
        "hints": [
            "quantize_multiplier: f, shift = math.frexp(M); q = math.floor(f * 2**31 + 0.5) rounds half away "
            "from zero here (f > 0, and the sum is exact in double); Python's round() goes to even.",
            "If q == 2**31 it does not fit int32: q = 2**30, shift + 1 (Learn 4, eq. (5)). If shift < -31: (0, 0).",
            "SRDHM: (a.astype(np.int64) * b + 2**30) >> 31, then INT32_MAX where a == b == INT32_MIN; "
            "return .astype(np.int32).",
            "RDBPOT: mask = (1 << e) - 1; threshold = (mask >> 1) + (x < 0); (x >> e) + ((x & mask) > threshold), "
            "all on int64.",
            "MBQM (double rounding): left = max(shift, 0), right = max(-shift, 0); "
            "rounding_divide_by_pot(srdhm(x * 2**left, q), right). Issue 25087 must give 12, not 11.",
        ],
    },
    {
        "id": "06",
        "folder": "06_requantize_with_fused_clamp",
        "file": "requantize.py",
        "title": "Requantize with a fused clamp, and an integer linear layer",
        "read": "docs/learn/fixed-point-requantization.md",
        "hints": [
            "activation_range: v = np.float32(f) / np.float32(scale), round half away from zero exactly "
            "(a = |v|, n = floor(a), n + (a - n >= 0.5), sign back), Q(f) = zero_point + that; return ints.",
            "RELU clamps from max(qmin, Q(0)) = max(qmin, zero_point); RELU6 also to min(qmax, Q(6)).",
            "requantize: multiply_by_quantized_multiplier(acc, q, shift) broadcasts per-channel (C,) arrays "
            "over the last axis; add the zero point in int64, np.clip to [act_min, act_max], then .astype(np.int8).",
            "Clamp after adding the zero point, and before casting: int8 casts wrap.",
            "quantized_linear: acc = (x_q.astype(np.int64) - x_zero_point) @ w_q.astype(np.int64).T + bias_q, "
            "then requantize (Learn 5, eqs. (4)-(6)).",
        ],
    },
    {
        "id": "07",
        "folder": "07_linear_backward",
        "file": "linear.py",
        "title": "The backward pass of a Linear layer",
        "read": "docs/learn/training-library.md",
        "hints": [
            "Shapes first: x (N, K), w (J, K), grad_y (N, J); every gradient has the shape of its variable.",
            "Forward (eq. (2)): x @ w.T + b.",
            "dL/dW = grad_y.T @ x, shape (J, K) (eq. (3)). It is a sum over the batch: do not divide by N.",
            "dL/db = grad_y.sum(axis=0), shape (J,) (eq. (4)).",
            "dL/dX = grad_y @ w, shape (N, K) (eq. (5)).",
            "numerical_gradient: loop over np.ndindex(a.shape); save old = a[i]; a[i] = old + h, call f(); "
            "a[i] = old - h, call f(); put a[i] = old back; (up - down) / (2 * h) (eq. (6)).",
        ],
    },
    {
        "id": "08",
        "folder": "08_calibration",
        "file": "calibrate.py",
        "title": "Calibration: min-max, percentile, TFLite int8 parameters",
        "read": "docs/learn/calibration.md",
        "hints": [
            "minmax_range: lo = hi = None; for each batch x = np.asarray(batch).astype(np.float32), fold in "
            "x.min() and x.max(); never append the batches to a list (Learn 8, eq. (6)).",
            "Start lo and hi from the first batch, not from 0 or +-inf cast oddly: all-negative data have hi < 0. "
            "No batch at all: raise ValueError.",
            "abs_histogram: a = np.abs(np.asarray(x).astype(np.float32).ravel()); "
            "hist, edges = np.histogram(a, bins=num_bins); return hist, edges.astype(np.float32).",
            "percentile_range: cdf = np.cumsum(hist / hist.sum()); i = np.searchsorted(cdf, percentile / 100.0); "
            "t = edges[i] (the LEFT edge of bin i); lo = max(-t, min_value), hi = min(t, max_value) (eq. (8)).",
            "tflite_int8_qparams: np.float32 everything: lo = min(lo, 0), hi = max(hi, 0), "
            "scale = (hi - lo) / np.float32(255), z = np.float32(-128) - lo / scale.",
            "Zero point: -128 below -128, 127 above 127, else round half AWAY from zero, exactly: a = |z|, "
            "n = floor(a), n + (a - n >= 0.5), sign back; np.rint and round() go to even (-124.5 must give -125).",
        ],
    },
    {
        "id": "09",
        "folder": "09_bn_folding",
        "file": "fold.py",
        "title": "Fold BatchNorm into a convolution, and its ReLU6 clamp",
        "read": "docs/learn/bn-folding-and-fusion.md",
        "hints": [
            "Work in float64: g = np.asarray(gamma, np.float64), and the same for beta, mean and var.",
            "bn_scale_shift (eq. (1)): a = g / np.sqrt(var + eps) (the square root of var + eps, eps inside); "
            "shift = beta - a * mean.",
            "fold_bn (eq. (3)): the BatchNorm acts on OUTPUT channels, axis 0 of the weight: "
            "w * a.reshape((O,) + (1,) * (w.ndim - 1)) works for Linear (O, K) and Conv2d (O, C/g, kH, kW).",
            "The new bias: a * (b - mean) + beta, with b = np.zeros(O) when bias is None.",
            "relu6_clamp: v = np.float32(6) / np.float32(output_scale); round half away from zero exactly "
            "(n = np.floor(v), n + (v - n >= 0.5)); (max(qmin, Z), min(qmax, Z + that)) as Python ints.",
        ],
    },
    {
        "id": "10",
        "folder": "10_int16x8",
        "file": "int16x8.py",
        "title": "TFLite's 16x8 mode: int16 activation parameters and a 16x8 convolution",
        "read": "docs/learn/int16-activations.md",
        "hints": [
            "int16_activation_params: lo = min(np.float32(min_val), np.float32(0)), hi likewise with max; "
            "scale = np.float32(max(abs(lo), abs(hi)) / np.float32(32767)); zero point 0.",
            "reduced_multiplier: (q + (1 << 15)) >> 16 while q < 0x7FFF0000, else 0x7FFF (Python ints).",
            "mbqm_int64: total = 15 - shift; (acc * r + (1 << (total - 1))) >> total, all in np.int64.",
            "conv1x1_16x8: acc = x.astype(np.int64) @ w.astype(np.int64).T + b (int32 would overflow past K = 512).",
            "The multiplier: quantize_multiplier(float(x_scale) * float(w_scale[o]) / float(y_scale)) per channel; "
            "then clip to [-32768, 32767] and cast to int16.",
        ],
    },
    {
        "id": "11",
        "folder": "11_evaluation",
        "file": "evaluation.py",
        "title": "Evaluating a quantized model: top-k with ties, latency statistics, stored bytes, per-tensor error",
        "read": "docs/learn/evaluating.md",
        "hints": [
            "top_k_hits: mine = logits[np.arange(N), labels][:, None]; rank = (logits > mine).sum(1) "
            "+ ((logits == mine) & (np.arange(C) < labels[:, None])).sum(1); return rank < k.",
            "Do not subtract logits (int8 codes overflow) and do not sort: two comparisons give the rank.",
            "latency_summary: samples = times[1 + warmup:]; np.percentile(samples, [50, 90, 99]); "
            "the first call is times[0], never a sample.",
            "weight_only_nbytes: per layer (n + 1) // 2 code bytes for int4 (packed per layer, not over the model), "
            "n for int8, plus 4 * w.shape[0] for the scales and 4 * b.size for a bias.",
            "tensor_error: deq = scale * (q.astype(np.float64) - zero_point); noise 0 gives float('inf').",
        ],
    },
    {
        "id": "12",
        "folder": "12_pruning",
        "file": "pruning.py",
        "title": "Pruning: magnitude masks, the global threshold, N:M masks, the bytes of sparse storage",
        "read": "docs/learn/pruning.md",
        "hints": [
            "kept_count (eq. (2)): p = np.float32(n) * (np.float32(1) - np.float32(sparsity)); "
            "int(np.rint(p)) rounds half to even; then max(..., 1) and min(..., n). Never n * (1 - s) in float64.",
            "magnitude_mask: order = np.argsort(-np.abs(w).ravel(), kind='stable') puts the largest first and "
            "keeps equal magnitudes in index order; keep = zeros(bool); keep[order[:k]] = True; reshape to w.shape.",
            "Do not use a threshold (|w| >= t): on ties it keeps more than k weights.",
            "global_magnitude_masks: concatenate every layer's np.abs(w).ravel() in order, apply magnitude_mask to "
            "the concatenation, and cut the flat mask back into pieces of each layer's size and shape.",
            "nm_mask: rows = np.abs(w).reshape(O, -1); groups = rows.reshape(O, -1, m); "
            "np.argsort(-groups, axis=2, kind='stable')[:, :, :n] are the kept positions; np.put_along_axis.",
            "is_nm_sparse: (w != 0).reshape(O, -1, m).sum(axis=2) <= n everywhere; return bool(...).",
            "storage_bytes: v = w.dtype.itemsize; nnz = np.count_nonzero(w); CSR index bytes: 1 if the largest "
            "entry <= 255, 2 if <= 65535, else 4; columns need K - 1, row pointers need nnz; there are O + 1 pointers.",
            "storage_bytes 2:4: pad each row with zeros to G * 4 columns, G = ceil(K / 4), check at most 2 nonzeros "
            "per group; bytes O * G * 2 * v + ceil(O * G * 2 * 2 / 8), else None.",
        ],
    },
    {
        "id": "13",
        "folder": "13_distillation",
        "file": "distillation.py",
        "title": "Knowledge distillation: soft targets, the KD loss with its T^2 factor, its gradient",
        "read": "docs/learn/distillation.md",
        "hints": [
            "log_softmax_t: u = np.asarray(z, np.float64) / T; u = u - u.max(axis=1, keepdims=True); "
            "return u - np.log(np.exp(u).sum(axis=1, keepdims=True)).",
            "distillation_loss: log_p = log_softmax_t(z_t, T), log_q = log_softmax_t(z_s, T); "
            "kl = (np.exp(log_p) * (log_p - log_q)).sum() / N. The teacher comes first: KL(p || q).",
            "The soft term is alpha * T * T * kl; the hard term is the cross-entropy at T = 1: "
            "-log_softmax_t(z_s, 1.0)[np.arange(N), labels].sum() / N, weighted by 1 - alpha. Return a float.",
            "distillation_grad (eq. (3)): q = np.exp(log_softmax_t(z_s, T)), p likewise for z_t; "
            "alpha * T / N * (q - p) + (1 - alpha) / N * (np.exp(log_softmax_t(z_s, 1.0)) - np.eye(K)[labels]).",
            "Why T and not T^2 in the gradient: d log q_k / d z_s,j = (delta_kj - q_j) / T (Learn 18, section 3).",
            "NaN with large logits: use log-probabilities throughout; np.log(softmax(u)) is -inf where a "
            "probability underflows to 0, and 0 * -inf is NaN.",
        ],
    },
]

QUIZZES = [
    {"id": "quiz1", "after": "03", "file": "quiz_01.md", "answers": "_solutions/quiz_01.py",
     "title": "Quiz 1: rounding, ranges and parameters"},
    {"id": "quiz2", "after": "06", "file": "quiz_02.md", "answers": "_solutions/quiz_02.py",
     "title": "Quiz 2: integer matmul and fixed-point requantization"},
    {"id": "quiz3", "after": "09", "file": "quiz_03.md", "answers": "_solutions/quiz_03.py",
     "title": "Quiz 3: an integer-only linear layer, end to end"},
]


def find(exercise_id: str) -> dict:
    """Return the exercise whose id (``"01"``), number (``"1"``) or folder name matches."""
    key = exercise_id.strip().rstrip("/").split("/")[-1]
    for ex in EXERCISES:
        if key in (ex["id"], ex["folder"]) or (key.isdigit() and int(key) == int(ex["id"])):
            return ex
    raise KeyError(f"no exercise {exercise_id!r}; choose one of {[e['id'] for e in EXERCISES]}")
