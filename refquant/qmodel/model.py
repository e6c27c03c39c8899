"""`QuantizedModel`: a graph of integer nodes and the one profile that runs them.

``run`` takes and returns what the runtime's own session would: one array for a model with one
input and one output, else a dict name → array, each in the dtype the model declares (float32
for a model that quantizes its own input). ``run_codes`` feeds integer codes to the tensor the
input ``quantize`` node writes and returns the codes the output ``dequantize`` node reads (the
integer-in / integer-out call). ``trace`` returns every tensor of one call, for layer-by-layer
debugging.

Every node runs through :mod:`refquant.ops` under the model's profile, so a model's layer and the
backend face's op of the same name can never disagree.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .. import _validate as V
from ..errors import QuantizationTypeError, QuantizationValueError, RefquantError, ShapeError
from ..profiles import Profile, get_profile, list_profiles
from . import storage
from .graph import Node, TensorInfo, as_names, check_graph
from .nodes import run_node

__all__ = ["QuantizedModel"]


_DATA_MOVEMENT = ("flatten", "reshape", "transpose", "onnx_shape")


class QuantizedModel:
    """An integer model: nodes in execution order, their tensors' parameters, one profile.

    Args:
        nodes: :class:`~refquant.qmodel.graph.Node` list in execution order.
        tensors: Every tensor's :class:`~refquant.qmodel.graph.TensorInfo` (a list or a dict by name).
        inputs, outputs: Names of the graph's input and output tensors.
        profile: The profile's name (:func:`refquant.profiles.list_profiles`).
        isa: The ISA the profile resolves its accumulation for (``"auto"``: this CPU; see
            :meth:`refquant.profiles.Profile.with_isa`).
        metadata: JSON-able facts about how the model was made (flow, calibrator, ...).

    Example:
        >>> from refquant import ptq, models
        >>> from refquant.data import load_digits
        >>> x, y = load_digits("test")
        >>> qm = ptq.quantize_static(models.load_reference_model("mlp"), x[:64], profile="tflite_reference")
        >>> qm.run(x[:2]).shape
        (2, 10)
    """

    def __init__(self, nodes, tensors, inputs, outputs, *, profile: str, isa: str = "auto", metadata=None):
        self.profile = V.as_choice(profile, "profile", tuple(_profile_names()))
        self.isa = isa
        self._profile = get_profile(self.profile, isa=isa)
        self.tensors = _tensor_table(tensors)
        if not isinstance(nodes, (list, tuple)) or not all(isinstance(n, Node) for n in nodes):
            raise QuantizationTypeError(f"nodes must be a list of Node records, got {V.describe(nodes)}")
        self.nodes = list(nodes)
        self.inputs, self.outputs = as_names(inputs, "inputs"), as_names(outputs, "outputs")
        for name in ("inputs", "outputs"):
            if not getattr(self, name):
                raise QuantizationValueError(f"{name} must name at least one tensor, got []")
        check_graph(self.inputs, self.outputs, self.tensors, self.nodes)
        if metadata is not None and not isinstance(metadata, dict):
            raise QuantizationTypeError(f"metadata must be a dict (JSON-able facts) or None, "
                                        f"got {V.describe(metadata)}")
        self.metadata = dict(metadata or {})
        self._caches: dict[str, dict] = {n.name: {} for n in self.nodes}

    # ----------------------------------------------------------------------------- inspection
    @property
    def resolved_profile(self) -> Profile:
        """The :class:`~refquant.profiles.Profile` the nodes run under (ISA resolved)."""
        return self._profile

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise QuantizationValueError(f"name must be one of the model's node names, got {name!r}")

    def qparams(self, tensor: str):
        """The :class:`~refquant.qparams.QParams` of an integer tensor."""
        if tensor not in self.tensors:
            raise QuantizationValueError(f"tensor must be one of the model's tensor names, got {tensor!r}")
        return self.tensors[tensor].qparams

    @property
    def nbytes(self) -> int:
        """Bytes of the constants as stored: weights (int8 one byte per code, int4 two codes per
        byte, float32 four), their scales and zero points, biases (int32 or float32), and each
        integer tensor's scale (4 bytes) and zero point (the dtype's bytes)."""
        return storage.stored_nbytes(self)

    def summary(self) -> str:
        """One line per node: op, output tensor, its dtype and parameters."""
        lines = [f"QuantizedModel(profile={self.profile!r}, {len(self.nodes)} nodes, {self.nbytes} bytes)"]
        for n in self.nodes:
            t = self.tensors[n.output]
            q = f"S={t.scale:.6g} Z={t.zero_point}" if t.is_integer else ""
            lines.append(f"  {n.name:<24} {n.op:<20} -> {n.output:<24} {t.dtype:<8} {q}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"QuantizedModel(profile={self.profile!r}, nodes={len(self.nodes)}, nbytes={self.nbytes})"

    # ----------------------------------------------------------------------------- running
    def _feeds(self, x, names, arg: str) -> dict:
        """``{tensor name: (label, array)}``; ``label`` names the value in messages (``x``, ``x['a']``)."""
        if isinstance(x, dict):
            missing = [n for n in names if n not in x]
            if missing or len(x) != len(names):
                raise QuantizationValueError(f"{arg} must have exactly the keys {list(names)}, got "
                                             f"{sorted(map(str, x))}")
            return {n: (f"{arg}[{n!r}]", x[n]) for n in names}
        if len(names) != 1:
            raise QuantizationValueError(f"this model has {len(names)} inputs {list(names)}: pass {arg} as a dict "
                                         f"name -> array")
        return {names[0]: (arg, x)}

    def _check_feed(self, name: str, label: str, a) -> np.ndarray:
        t = self.tensors[name]
        what = f"input {name!r}" if label == name else f"{label} (input {name!r})"
        if t.is_integer:
            arr = V.as_typed_array(a, what, (np.dtype(t.dtype),), array_only=True)
        else:
            arr = V.as_float_array(a, what).astype(np.float32, copy=False)
            # read by QuantizeLinear / QUANTIZE only: NaN and Inf are quantized as the runtime does (the
            # profile's measured rule: saturate, NaN to q_min, ...); any other reader needs finite values
            quantized_only = self._quantized_only(name)
            if arr.size and not quantized_only and not np.all(np.isfinite(arr)):
                raise QuantizationValueError(f"{what} must be finite, got NaN or Inf")
        if arr.ndim == 0:
            raise ShapeError(f"{what} must have a batch dimension, got a scalar")
        return arr

    def _quantized_only(self, name: str) -> bool:
        """Whether every reader of float tensor ``name`` quantizes it, directly or after moving data."""
        readers = [n for n in self.nodes if name in n.inputs]
        return bool(readers) and all(n.op == "quantize" or (n.op in _DATA_MOVEMENT and self._quantized_only(n.output))
                                     for n in readers)

    def _execute(self, feeds: dict, *, skip=frozenset()) -> dict:
        env = {k: self._check_feed(k, label, v) for k, (label, v) in feeds.items()}
        for n in self.nodes:
            if n.name in skip or n.output in env:
                continue
            args = [env[i] for i in n.inputs]
            try:
                env[n.output] = run_node(n, args, self.tensors, self._profile, self._caches[n.name])
            except RefquantError as err:
                if getattr(err, "node", None) is not None:
                    raise
                context = ""
                if isinstance(err, ShapeError):  # most often the input's shape: say what it was
                    context = "; the model's input " + ", ".join(f"{label} has shape {env[k].shape}"
                                                               for k, (label, _) in feeds.items())
                named = type(err)(f"node {n.name!r} ({n.op}): {err}{context}")
                named.node = n.name
                raise named from None
        return env

    def run(self, x):
        """Run the model as the runtime's session would.

        Args:
            x: The input array (one-input model) or a dict name → array, in the dtype each
                input declares (float32 for a model that quantizes its own input).

        Returns:
            One array (one output) or a dict name → array.
        """
        env = self._execute(self._feeds(x, self.inputs, "x"))
        out = {name: env[name] for name in self.outputs}
        return out[self.outputs[0]] if len(out) == 1 else out

    def trace(self, x) -> dict:
        """Every tensor of one :meth:`run`: a dict tensor name → array (codes or float32)."""
        return self._execute(self._feeds(x, self.inputs, "x"))

    def _boundary(self, op: str, side: str) -> dict:
        """Map graph input/output → the tensor on the integer side of its quantize/dequantize node."""
        found = {}
        for n in self.nodes:
            if n.op == op:
                if side == "in" and n.inputs[0] in self.inputs:
                    found[n.inputs[0]] = n
                if side == "out" and n.output in self.outputs:
                    found[n.output] = n
        return found

    def run_codes(self, q):
        """Integer in, integer out: codes for the tensors the input ``quantize`` nodes write,
        codes of the tensors the output ``dequantize`` nodes read (the same integer graph
        :meth:`run` executes, without its first and last steps).

        Args:
            q: Codes (one input) or a dict keyed by the *integer* tensor names.

        Returns:
            Codes (one output) or a dict keyed by integer tensor names.
        """
        qin, qout = self._boundary("quantize", "in"), self._boundary("dequantize", "out")
        in_names = tuple(qin[i].output if i in qin else i for i in self.inputs)
        out_names = tuple(qout[o].inputs[0] if o in qout else o for o in self.outputs)
        skip = {n.name for n in qin.values()} | {n.name for n in qout.values()}
        env = self._execute(self._feeds(q, in_names, "q"), skip=skip)
        out = {name: env[name] for name in out_names}
        return out[out_names[0]] if len(out) == 1 else out

    # ----------------------------------------------------------------------------- files
    def save(self, path) -> None:
        """Write ``path`` (``.npz``: arrays + a versioned JSON header; int4 weights packed).
        Nothing is left at ``path`` if writing fails."""
        storage.save(self, path)

    @classmethod
    def load(cls, path) -> "QuantizedModel":
        """Read a model written by :meth:`save` (``allow_pickle=False``).

        Raises:
            FormatVersionError: Another format version, or arrays that disagree with the header.
        """
        return storage.load(path, cls)


def _profile_names():
    return list_profiles()


def _tensor_table(tensors) -> dict:
    """``{name: TensorInfo}`` from a list of TensorInfo records or such a dict (keyed by their names)."""
    records = list(tensors.values()) if isinstance(tensors, dict) else tensors
    if not isinstance(records, (list, tuple)) or not all(isinstance(t, TensorInfo) for t in records):
        raise QuantizationTypeError(f"tensors must be a list of TensorInfo records or a dict name -> TensorInfo, "
                                    f"got {V.describe(tensors)}")
    if isinstance(tensors, dict):
        wrong = next((k for k, t in tensors.items() if k != t.name), None)
        if wrong is not None:
            raise QuantizationValueError(f"tensors must be keyed by each TensorInfo's name, got key {wrong!r} for "
                                         f"tensor {tensors[wrong].name!r}")
        return dict(tensors)
    table = {t.name: t for t in records}
    if len(table) != len(records):
        twice = next(n for n in table if sum(t.name == n for t in records) > 1)
        raise QuantizationValueError(f"tensors must name each tensor once, got {twice!r} twice")
    return table
