"""``import_quantized`` against ONNX Runtime on the whole model zoo × every ``quantize_static`` combination.

    python benchmarks/onnx_import_sweep.py                      # every model x every combination (~40 s)
    python benchmarks/onnx_import_sweep.py --models cnn,gemm --combos qdq-s8s8

The conformance test ``tests/test_conformance_onnx_import.py`` runs a subset of this matrix. For
each model of ``tests/support/onnx_quant_zoo.py`` (the four bundled models and the small graphs)
and each combination (``COMBOS``: QDQ / QOperator × u8s8 / u8u8 / s8s8 × per-tensor / per-channel ×
reduce_range, and the ``EXTRAS``), ONNX Runtime's ``quantize_static`` writes the model; then

* ``import_quantized(q).run(x)`` is compared ``==`` with ONNX Runtime (CPU EP, one intra-op
  thread, default optimization level) on the zoo's input sets (in range, batch 17, batch 1, past
  the calibrated range, ties and huge values): the number of outputs compared, or the number that
  differ with the first (index, ours, ORT) and the first integer tensor where the two part;
* or the refusal (``UnsupportedError``), marked ``ok`` when ONNX Runtime's optimized graph keeps an
  order-dependent float op that the message names, ``WRONG`` otherwise;
* and the op counts of ONNX Runtime's optimized graph (``float:`` marks the ops that run on float32).

Exit status 1 when any case mismatches, refuses wrongly or raises anything else.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support import onnx_quant_zoo as Z  # noqa: E402

from refquant.errors import UnsupportedError  # noqa: E402
from refquant.interop.onnx import import_quantized  # noqa: E402


def _ops(q: bytes) -> str:
    """``QLinearConv×3 QGemm float:Conv×2``: ORT's optimized graph, Q/DQ and layout Transposes left out."""
    floats = Counter(op for _, _, op in Z.float_nodes(q))
    ints = Counter()
    for (_, op), k in Z.optimized_ops(q).items():
        ints[op] += k
    for op in list(floats):
        ints[op] -= floats[op]
    skip = {"QuantizeLinear", "DequantizeLinear", "Transpose"}
    parts = [_times(op, k) for op, k in sorted(ints.items()) if k > 0 and op not in skip]
    return " ".join(parts + ["float:" + _times(op, k) for op, k in sorted(floats.items())])


def _times(op: str, k: int) -> str:
    return op + (f"×{k}" if k > 1 else "")


def run_case(model: str, combo) -> tuple[str, str, int]:
    """``(status, text, outputs compared)``; status is ``ok``, ``refused``, ``MISMATCH``, ``WRONG REFUSAL`` or ``ERROR``."""
    try:
        q = Z.quantized(model, combo)
    except Exception as err:  # noqa: BLE001 (ORT's quantizer refused the combination)
        return "skip", f"quantize_static failed: {type(err).__name__}: {str(err)[:80]}", 0
    ordered = Z.float_nodes(q, order_dependent=True)
    try:
        qm = import_quantized(q)
    except UnsupportedError as err:
        msg = str(err)
        if Z.named_float_node(msg, q):
            return "refused", f"refused: {msg[:110]}", 0
        why = "ORT runs no order-dependent float op" if not ordered else f"ORT's float nodes are {ordered}"
        return "WRONG REFUSAL", f"WRONG REFUSAL ({why}): {msg[:110]}", 0
    except Exception as err:  # noqa: BLE001 (the sweep reports it)
        return "ERROR", f"ERROR: import raised {type(err).__name__}: {str(err)[:100]}", 0
    if ordered:
        return "WRONG IMPORT", f"WRONG IMPORT: imported, but ORT runs in float: {[(n, op) for n, _, op in ordered]}", 0
    n, bad_text = 0, []
    for kind, x in Z.case_inputs(model, q).items():
        want = Z.ort_run(q, x)
        try:
            got = np.asarray(qm.run(x))
        except Exception as err:  # noqa: BLE001 (the sweep reports it)
            return "ERROR", f"ERROR: {kind}: run raised {type(err).__name__}: {str(err)[:100]}", n
        n += want.size
        bad = (got.shape != want.shape) or (got.dtype != want.dtype)
        if not bad:
            diff = got.view(np.uint32) != want.view(np.uint32) if got.dtype == np.float32 else got != want
            if diff.any():
                i = tuple(int(v) for v in np.argwhere(diff)[0])
                where = Z.first_divergence(qm, q, x[i[0]:i[0] + 1])
                bad_text.append(f"{kind}: {int(diff.sum())}/{diff.size} differ, first at {i}: ours {got[i]!r} "
                                f"ORT {want[i]!r}; {where}")
        else:
            bad_text.append(f"{kind}: ours {got.shape} {got.dtype}, ORT {want.shape} {want.dtype}")
    if bad_text:
        return "MISMATCH", "MISMATCH " + " | ".join(bad_text), n
    return "ok", f"{n} outputs ==", n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", help="comma-separated model names (default: all)")
    ap.add_argument("--combos", help="comma-separated substrings of combination names (default: all)")
    args = ap.parse_args(argv)
    models = args.models.split(",") if args.models else list(Z.BUNDLED + Z.SMALL)
    combos = [c for c in Z.COMBOS + Z.EXTRAS
              if not args.combos or any(s in c.name for s in args.combos.split(","))]
    import onnxruntime

    print(f"# import_quantized vs ONNX Runtime {onnxruntime.__version__} (CPU EP, 1 thread, ORT_ENABLE_ALL), "
          f"{platform.machine()} {platform.processor() or ''}".rstrip())
    print(f"{'model':<20} {'combination':<26} {'result':<60} ORT optimized graph")
    totals: Counter = Counter()
    t0 = time.perf_counter()
    for m in models:
        for c in combos:
            status, text, n = run_case(m, c)
            totals[status] += 1
            totals["outputs"] += n
            ops = _ops(Z.quantized(m, c)) if status != "skip" else ""
            print(f"{m:<20} {c.name:<26} {text:<60} {ops}")
    dt = time.perf_counter() - t0
    print(f"\n{sum(v for k, v in totals.items() if k != 'outputs')} cases in {dt:.0f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
    return 1 if any(totals[k] for k in ("MISMATCH", "WRONG REFUSAL", "WRONG IMPORT", "ERROR")) else 0


if __name__ == "__main__":
    sys.exit(main())
