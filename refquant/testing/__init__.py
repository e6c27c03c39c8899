"""refquant as the golden reference in your test suite.

For people who write an int8 kernel, a compiler backend or an accelerator simulator and need to
know, bit for bit, what TFLite/LiteRT, ONNX Runtime or PyTorch computes:

* :func:`assert_bit_exact` (:mod:`refquant.testing.asserts`): shape, dtype, then values by bits,
  with a report of how many elements differ, a histogram of the differences in LSB (ULP for
  floats) and the first mismatches beside their inputs;
* golden files (:mod:`refquant.testing.golden`, ``refquant golden``): inputs, parameters and
  expected outputs of a face op or a model file, in a versioned ``.npz`` any language reads;
* hypothesis strategies (:mod:`refquant.testing.strategies`, needs ``pip install hypothesis``;
  not imported here): valid parameters for a profile, tensors rich in ties and saturating values,
  convolution geometries, small models;
* a pytest plugin (:mod:`refquant.testing.plugin`, active once refquant is installed): the
  ``refquant_oracle`` fixture and ``--refquant-golden-dir``;
* the mismatch explainer (:mod:`refquant.testing.explain`): :func:`explain_mismatch` re-runs an op
  under every arithmetic the profiles know and says which one reproduces your output;
  ``explain_model`` finds the first node where two runs of a model part.

``import refquant`` does not import this package; this package imports neither pytest nor
hypothesis nor Numba (the faces load when an op first runs). See the how-to "Use refquant as the
golden reference in your test suite".

Added in 0.1.0.
"""

from __future__ import annotations

from .asserts import MismatchError, assert_bit_exact, mismatch_report
from .golden import FORMAT_VERSION, MAGIC, Golden, GoldenCase, load_golden, write_golden
from .golden_ops import GOLDEN_OPS, GoldenOp

# --- explain_mismatch (refquant/testing/explain.py, written by another helper) ---------------------
# explain.py imports the integer model, hence the kernels and Numba: a plain `from .explain import ...`
# here would make the pytest plugin (which imports this package) load Numba in every project that has
# refquant installed. So the name resolves on first use (PEP 562); tests/test_testing_plugin.py checks
# that loading the plugin imports no Numba.


def __getattr__(name: str):
    if name in ("explain_mismatch", "explain_model"):
        from . import explain

        return getattr(explain, name)
    raise AttributeError(f"module 'refquant.testing' has no attribute {name!r}")


__all__ = [
    "assert_bit_exact",
    "mismatch_report",
    "MismatchError",
    "write_golden",
    "load_golden",
    "Golden",
    "GoldenCase",
    "GoldenOp",
    "GOLDEN_OPS",
    "MAGIC",
    "FORMAT_VERSION",
    "explain_mismatch",  # --- resolved lazily by __getattr__ above
    "explain_model",
]
