"""The face ops golden files are written for: arguments, profiles, and a seeded case generator each.

An op is named ``face.function`` after the pinned faces of :mod:`refquant.backends`
(``tflite.fully_connected``, ``onnxruntime.qlinear_conv``, ``pytorch.linear``). Each
:class:`GoldenOp` lists the face function's positional arguments in order (so that a reader in
any language knows the call), which of them are activations (the golden file's ``input`` arrays;
the rest are ``param`` arrays), the profiles it can reproduce with the keyword that selects each
(``kernel=``, ``engine=``, ``zero_point_order=``; ``isa=`` is recorded apart), and a generator of
cases. Cases cycle through three kinds:

| kind | what it exercises |
|---|---|
| ``random`` | realistic log-uniform scales, random zero points and codes |
| ``ties`` | scales $m \\cdot 2^{-e}$ (few significant bits): products and quotients land on exact $.5$ ties |
| ``saturating`` | a small output scale (or values past the range): outputs clamp at both ends |

Codes mix the format's extremes, the zero point and uniform values (:mod:`refquant.testing._values`).

Added in 0.1.0.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import _validate as V
from ..errors import QuantizationValueError, UnsupportedError
from ._cases import MAKERS

__all__ = ["GoldenOp", "GOLDEN_OPS", "KINDS", "face_function", "golden_op"]  # op_cases serves golden.py

KINDS = ("random", "ties", "saturating")
_ATTEMPTS = 50
FACES = ("tflite", "onnx", "onnxruntime", "pytorch")


def face_function(face: str, name: str) -> Callable:
    """The function ``name`` of the face ``face`` (``"tflite"``, ``"onnx"``, ``"onnxruntime"``,
    ``"pytorch"``), imported on first use (the faces load Numba)."""
    face = V.as_choice(face, "face", FACES)
    if face == "tflite":
        from ..backends import tflite as module
    elif face == "onnx":
        from ..backends import onnx as module
    elif face == "onnxruntime":
        from ..backends import onnxruntime as module
    else:
        from ..backends import pytorch as module
    public = tuple(n for n in module.__all__ if callable(getattr(module, n)))
    if not isinstance(name, str) or name not in public:
        raise QuantizationValueError(f"name must be a function of refquant.backends.{face}, one of {list(public)}, "
                                     f"got {V.describe(name)}")
    return getattr(module, name)


@dataclass(frozen=True)
class GoldenOp:
    """One face op golden files can hold.

    Attributes:
        name: ``"face.function"``.
        arguments: The face function's positional arguments, in order.
        inputs: Those that are activations (the rest are parameters).
        profiles: Profile name → keyword arguments that select it; the first is the default.
        make_case: ``(rng, kind) -> (arrays, attrs)``: every positional argument as an array, and
            the keyword attributes (stride, padding, ...) as JSON values.
    """

    name: str
    arguments: tuple
    inputs: tuple
    profiles: dict
    make_case: Callable

    @property
    def face(self) -> str:
        return self.name.split(".")[0]

    @property
    def function(self) -> str:
        return self.name.split(".")[1]

    def takes_isa(self) -> bool:
        """Whether the face function has an ``isa=`` keyword (its accumulation depends on the CPU)."""
        return "isa" in inspect.signature(face_function(self.face, self.function)).parameters

    def call(self, arrays: dict, attrs: dict, call_kwargs: dict) -> np.ndarray:
        """The face function on one case: ``f(*arrays in argument order, **attrs, **call_kwargs)``."""
        fn = face_function(self.face, self.function)
        return fn(*[arrays.get(a) for a in self.arguments], **attrs, **call_kwargs)


# ----------------------------------------------------------------------------- the registry

_TFL = {"tflite_reference": {"kernel": "reference"}, "tflite_xnnpack": {"kernel": "xnnpack"},
        "tflite_optimized": {"kernel": "optimized"}}
_TORCH = {"pytorch_fbgemm": {"engine": "fbgemm"}, "pytorch_x86": {"engine": "x86"},
          "pytorch_qnnpack": {"engine": "qnnpack"}}
_LAYER = ("x", "x_scale", "x_zero_point", "w", "w_scale", "b", "y_scale", "y_zero_point")
_BINARY = ("a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale", "y_zero_point")
_QCONV = ("x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point", "y_scale", "y_zero_point", "B")
_TORCH_LAYER = ("x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point", "bias", "y_scale", "y_zero_point")


def _ops():
    args = {"tflite.fully_connected": _LAYER, "tflite.conv2d": _LAYER, "tflite.depthwise_conv2d": _LAYER,
            "tflite.add": _BINARY, "tflite.quantize": ("x", "scale", "zero_point"),
            "pytorch.quantize_per_tensor": ("x", "scale", "zero_point"), "pytorch.linear": _TORCH_LAYER,
            "pytorch.conv2d": _TORCH_LAYER, "pytorch.add": _BINARY,
            "onnxruntime.qlinear_add": ("a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "c_scale",
                                        "c_zero_point")}
    profiles = {"tflite": _TFL, "pytorch": _TORCH, "onnx": {"onnx": {}}, "onnxruntime": {"onnxruntime": {}}}
    profiles_of = {"pytorch.quantize_per_tensor": {"pytorch_fbgemm": {},
                                                   "pytorch_fbgemm_zp_after": {"zero_point_order": "after"}}}
    for face in ("onnx", "onnxruntime"):
        args.update({f"{face}.qlinear_matmul": _BINARY, f"{face}.qlinear_conv": _QCONV,
                     f"{face}.quantize_linear": ("x", "y_scale", "y_zero_point")})
    ops = {}
    for name in sorted(args):
        inputs = ("a", "b") if args[name][0] == "a" else ("x",)  # activations; the rest are parameters
        ops[name] = GoldenOp(name, args[name], inputs, profiles_of.get(name, profiles[name.split(".")[0]]),
                             MAKERS[name])
    return ops


#: ``"face.function"`` → :class:`GoldenOp`: every op ``refquant golden --op`` takes.
GOLDEN_OPS = _ops()


def golden_op(op) -> GoldenOp:
    """The :class:`GoldenOp` called ``op`` (a key of :data:`GOLDEN_OPS`)."""
    return GOLDEN_OPS[V.as_choice(op, "op", tuple(GOLDEN_OPS))]


def op_cases(add, op, profile, cases: int, seed: int, isa: str) -> dict:
    """The cases of the face op ``op`` (each stored by ``add(i, kind, attrs, roles)``, which returns its
    header entry); returns the golden header's op-specific fields (``regenerate`` with ``{cases}``,
    ``{seed}``, ``{out}`` left to fill)."""
    g = golden_op(op)
    profile = next(iter(g.profiles)) if profile is None else V.as_choice(profile, "profile", tuple(g.profiles))
    isa = isa if g.takes_isa() else None
    keywords = {**g.profiles[profile], **({"isa": isa} if isa else {})}
    rng, entries = np.random.default_rng(seed), []
    for i in range(cases):
        for _ in range(_ATTEMPTS):  # a case the backend refuses (UnsupportedError) is drawn again
            args, attrs = g.make_case(rng, KINDS[i % 3])
            try:
                y = g.call(args, attrs, keywords)
                break
            except UnsupportedError:
                continue
        else:
            raise UnsupportedError(f"{g.name} under {profile}: {_ATTEMPTS} drawn cases in a row were refused")
        roles = {"input": {k: args[k] for k in g.inputs},
                 "param": {k: args[k] for k in g.arguments if k not in g.inputs and args.get(k) is not None},
                 "expected": {"y": y}}
        entries.append(add(i, KINDS[i % 3], attrs, roles))
    regenerate = f"refquant golden --op {g.name} --profile {profile}" + (f" --isa {isa}" if isa else "")
    return {"op": g.name, "profile": profile, "isa": isa, "model": None, "cases": entries,
            "call": {"face": g.face, "function": g.function, "arguments": list(g.arguments), "keywords": keywords},
            "regenerate": regenerate + " --cases {cases} --seed {seed} --out {out}"}
