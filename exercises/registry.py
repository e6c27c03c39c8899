"""The list of exercises: folder, the file you edit, what to read, and hints shown when a check fails.

Exercises are done in order; a quiz follows every few of them. Later issues append 04-07 here.
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
]

QUIZZES = [
    {"id": "quiz1", "after": "03", "file": "quiz_01.md", "answers": "_solutions/quiz_01.py",
     "title": "Quiz 1: rounding, ranges and parameters"},
]


def find(exercise_id: str) -> dict:
    """Return the exercise whose id (``"01"``), number (``"1"``) or folder name matches."""
    key = exercise_id.strip().rstrip("/").split("/")[-1]
    for ex in EXERCISES:
        if key in (ex["id"], ex["folder"]) or (key.isdigit() and int(key) == int(ex["id"])):
            return ex
    raise KeyError(f"no exercise {exercise_id!r}; choose one of {[e['id'] for e in EXERCISES]}")
