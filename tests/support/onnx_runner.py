"""Build one-op ONNX models and run them on ONNX Runtime or on ``onnx.reference``.

``run_onnx_op`` builds a single-node model with ``onnx.helper`` and runs it on

* ``engine="ort"``: the ONNX Runtime CPU execution provider, ``ORT_DISABLE_ALL``
  (no fusion, no constant folding) and one intra-op thread;
* ``engine="reference"``: ``onnx.reference.ReferenceEvaluator`` (the spec's Python
  transcription; it has known departures from the spec text, backends.md §2, §9).

Inputs are graph inputs by default, with symbolic dimensions, so one cached session
serves every shape of the same rank; ``initializers`` lists inputs to embed as constant
initializers instead (their bytes then join the cache key, so each new constant costs a
new session, a few ms). ONNX Runtime 1.32 accepted every input of the ops wrapped here
as a fed (non-constant) input, scales and zero points of the com.microsoft ops included.
Real models hold weights as constants, which ORT prepacks; the wrappers' ``const_weights=True``
reproduces that. Fed and constant weights gave identical results in every case tried
(MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv; u8s8, s8s8, u8u8).

Opsets: the default is opset 21 for the ``""`` domain: QuantizeLinear /
DequantizeLinear with per-axis (13+), blocked (21+), ``output_dtype`` (21+), int4/uint4,
int16/uint16 and float8 (19+/21+). Pass ``opset=25`` for int2/uint2, ``opset=23`` for the
``precision`` attribute. com.microsoft ops use domain version 1.

Types that NumPy lacks:

* inputs: pass ``ml_dtypes`` arrays (``ml_dtypes.int4``, ``float8_e4m3fn``, ...) or
  name the ONNX type in ``input_dtypes``;
* outputs: int4/int2 come back **unpacked** as ``np.int8``, uint4/uint2 as ``np.uint8``
  (refquant's convention), float8/float4 as ``ml_dtypes`` arrays.

ONNX Runtime's Python API cannot return INT4/UINT4/INT2/UINT2 tensors
(``sess.run`` raises "No corresponding Numpy type for Tensor Type. Int4x2"); it
returns float8 outputs as ``uint8`` bit patterns. This module therefore calls
``run_with_ort_values`` and reads sub-byte outputs as raw packed bytes
(``OrtValue.data_ptr()``, two values per byte, first element in the low nibble), and
writes sub-byte inputs into an ``OrtValue.ortvalue_from_shape_and_type`` buffer.
(Cross-check: the same int4 QuantizeLinear followed by an in-graph ``Cast`` to int8
gave identical values.)

ONNX Runtime 1.32 limits seen with these models (x86-64 AVX2):

* MatMulInteger: a 1-D (per-row) ``a_zero_point`` is refused ("input1 zero point must
  be a scalar or 1D tensor of size 1"); per-column ``b_zero_point`` works.
* ConvInteger: a per-channel ``w_zero_point`` is refused ("Non per-tensor quantization
  is not supported now"); the reference evaluator accepts it.
* QLinearConv: per-channel *unequal* weight zero points are accepted and matched the
  reference evaluator exactly (u8/s8, fed or constant weights).
* QuantizeLinear to FLOAT4E2M1 (opset 23): NOT_IMPLEMENTED in ORT.
* com.microsoft ops do not exist in ``onnx.reference``: their wrappers refuse
  ``engine="reference"``.
"""

from __future__ import annotations

import ctypes
import warnings
from collections import OrderedDict

import ml_dtypes
import numpy as np
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "DEFAULT_OPSET",
    "MS_DOMAIN",
    "onnx_type",
    "run_onnx_op",
    "run_quantize_linear",
    "run_dequantize_linear",
    "run_dynamic_quantize_linear",
    "run_matmul_integer",
    "run_qlinear_matmul",
    "run_conv_integer",
    "run_qlinear_conv",
    "run_qlinear_add",
    "run_qlinear_global_average_pool",
    "run_qlinear_sigmoid",
]

DEFAULT_OPSET = 21
MS_DOMAIN = "com.microsoft"

# Weight inputs (by position) that ``const_weights=True`` embeds as initializers, as real models do.
_WEIGHT_INPUTS = {
    "MatMulInteger": (1,),
    "QLinearMatMul": (3,),
    "ConvInteger": (1,),
    "QLinearConv": (3, 8),
}

# Sub-byte types: (bits, signed, unpacked NumPy dtype or ml_dtypes float).
_SUBBYTE = {
    TensorProto.INT4: (4, True, np.dtype(np.int8)),
    TensorProto.UINT4: (4, False, np.dtype(np.uint8)),
    TensorProto.INT2: (2, True, np.dtype(np.int8)),
    TensorProto.UINT2: (2, False, np.dtype(np.uint8)),
    TensorProto.FLOAT4E2M1: (4, False, np.dtype(ml_dtypes.float4_e2m1fn)),
}
# One-byte float types: ORT holds them as uint8 bit patterns.
_FLOAT8 = {
    TensorProto.FLOAT8E4M3FN: np.dtype(ml_dtypes.float8_e4m3fn),
    TensorProto.FLOAT8E4M3FNUZ: np.dtype(ml_dtypes.float8_e4m3fnuz),
    TensorProto.FLOAT8E5M2: np.dtype(ml_dtypes.float8_e5m2),
    TensorProto.FLOAT8E5M2FNUZ: np.dtype(ml_dtypes.float8_e5m2fnuz),
}
_NAMES = {"float32": TensorProto.FLOAT, "float": TensorProto.FLOAT, "float64": TensorProto.DOUBLE,
          "double": TensorProto.DOUBLE, "bool": TensorProto.BOOL}


def onnx_type(spec) -> int:
    """``TensorProto`` element type of a NumPy / ml_dtypes dtype, a name or an int.

    Names: NumPy's (``"int8"``, ``"float32"``) or ONNX's with or without underscores
    (``"int4"``, ``"float8e4m3fn"``, ``"float8_e4m3fn"``).
    """
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return int(spec)
    if isinstance(spec, str):
        key = spec.lower()
        if key in _NAMES:
            return _NAMES[key]
        upper = key.upper().replace("_", "")
        if upper in TensorProto.DataType.keys():
            return TensorProto.DataType.Value(upper)
        if upper == "FLOAT4E2M1FN":
            return TensorProto.FLOAT4E2M1
        raise ValueError(f"unknown ONNX element type name {spec!r}")
    return helper.np_dtype_to_tensor_dtype(np.dtype(spec))


def _as_type(arr, t):
    """Cast ``arr`` to the NumPy/ml_dtypes dtype that holds ONNX type ``t``."""
    return np.asarray(arr).astype(helper.tensor_dtype_to_np_dtype(t))


def _normalize_output(arr, t):
    """int4/int2 -> int8, uint4/uint2 -> uint8, float8/float4 -> ml_dtypes, else unchanged."""
    arr = np.asarray(arr)
    if t in _SUBBYTE:
        return arr.astype(_SUBBYTE[t][2])
    if t in _FLOAT8:
        return arr.view(_FLOAT8[t]) if arr.dtype == np.uint8 else arr.astype(_FLOAT8[t])
    return arr


# --------------------------------------------------------------------------- sub-byte packing


def _pack(codes, bits):
    """Pack unsigned codes (< 2**bits), first element in the lowest bits, pad the last byte."""
    per = 8 // bits
    flat = np.asarray(codes, dtype=np.uint8).reshape(-1)
    flat = np.concatenate([flat, np.zeros((-flat.size) % per, np.uint8)]).reshape(-1, per)
    shifts = (bits * np.arange(per)).astype(np.uint8)
    return np.bitwise_or.reduce(flat << shifts, axis=1).astype(np.uint8)


def _unpack(raw, bits, n):
    """Inverse of :func:`_pack`: ``n`` unsigned codes from packed bytes."""
    per = 8 // bits
    shifts = (bits * np.arange(per)).astype(np.uint8)
    codes = (np.asarray(raw, np.uint8)[:, None] >> shifts) & np.uint8((1 << bits) - 1)
    return codes.reshape(-1)[:n]


def _subbyte_codes(arr, t):
    bits = _SUBBYTE[t][0]
    return np.asarray(arr).view(np.uint8) & np.uint8((1 << bits) - 1)


def _codes_to_values(codes, t, shape):
    bits, signed, target = _SUBBYTE[t]
    if t == TensorProto.FLOAT4E2M1:
        return codes.view(target).reshape(shape)  # the code is the bit pattern
    v = codes.astype(np.int16)
    if signed:
        v = np.where(v >= (1 << (bits - 1)), v - (1 << bits), v)  # sign-extend
    return v.astype(target).reshape(shape)


# --------------------------------------------------------------------------- model


def _opsets(domain, opset):
    opset = DEFAULT_OPSET if opset is None else opset
    ids = [helper.make_opsetid("", opset if domain == "" else DEFAULT_OPSET)]
    if domain:
        ids.append(helper.make_opsetid(domain, 1 if domain == MS_DOMAIN else opset))
    return ids


def _build(op_type, in_types, consts, attrs, out_types, domain, opset):
    names, graph_inputs, inits = [], [], []
    for i, t in enumerate(in_types):
        if t is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        if i in consts:
            inits.append(numpy_helper.from_array(consts[i], name))
        else:
            ndim = t[1]
            graph_inputs.append(helper.make_tensor_value_info(name, t[0], [f"d{i}_{j}" for j in range(ndim)]))
    while names and names[-1] == "":
        names.pop()
    outs = [f"out{j}" for j in range(len(out_types))]
    node = helper.make_node(op_type, names, outs, domain=domain, **attrs)
    graph = helper.make_graph([node], op_type, graph_inputs,
                              [helper.make_tensor_value_info(o, t, None) for o, t in zip(outs, out_types)],
                              initializer=inits)
    ids = _opsets(domain, opset)
    model = helper.make_model(graph, opset_imports=ids)
    model.ir_version = helper.find_min_ir_version_for([i for i in ids if i.domain == ""])
    return model


# --------------------------------------------------------------------------- engines

_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 256


def _session(key, model, engine):
    sess = _CACHE.get(key)
    if sess is not None:
        _CACHE.move_to_end(key)
        return sess
    if engine == "ort":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 4  # errors still raise, with the message
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    elif engine == "reference":
        from onnx.reference import ReferenceEvaluator

        sess = ReferenceEvaluator(model)
    else:
        raise ValueError(f"engine must be 'ort' or 'reference', got {engine!r}")
    _CACHE[key] = sess
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return sess


def _ort_value(arr, t):
    import onnxruntime as ort

    if t in _SUBBYTE:
        ov = ort.OrtValue.ortvalue_from_shape_and_type(list(arr.shape), t)
        packed = _pack(_subbyte_codes(arr, t), _SUBBYTE[t][0])
        if packed.size:
            ctypes.memmove(ov.data_ptr(), packed.ctypes.data, min(packed.size, ov.tensor_size_in_bytes()))
        return ov
    if t in _FLOAT8:
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(np.ascontiguousarray(arr).view(np.uint8), t)
    return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(arr))


def _from_ort_value(ov, t):
    if t in _SUBBYTE:
        shape = tuple(ov.shape())
        nbytes = ov.tensor_size_in_bytes()
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ov.data_ptr())).copy() if nbytes else \
            np.zeros(0, np.uint8)
        return _codes_to_values(_unpack(raw, _SUBBYTE[t][0], int(np.prod(shape))), t, shape)
    return _normalize_output(ov.numpy(), t)


def run_onnx_op(op_type, inputs, attrs=None, output_dtypes=(np.float32,), *, domain="", opset=None, engine="ort",
                initializers=(), input_dtypes=None):
    """Run one ONNX node and return its outputs as a tuple of NumPy arrays.

    Args:
        op_type: e.g. ``"QuantizeLinear"``.
        inputs: arrays in the operator's input order; ``None`` for an omitted optional input.
            Python scalars become 0-d arrays (floats as float32). Exotic types: ml_dtypes arrays.
        attrs: node attributes (``helper.make_node`` keyword arguments).
        output_dtypes: one dtype spec per output (see :func:`onnx_type`).
        domain: ``""`` or ``"com.microsoft"``.
        opset: version of the ``""`` domain (default 21) or of a non-Microsoft ``domain``.
        engine: ``"ort"`` (ONNX Runtime CPU EP, ORT_DISABLE_ALL, 1 thread) or ``"reference"``.
        initializers: input positions embedded as constant initializers instead of fed.
        input_dtypes: optional per-input dtype specs that override the arrays' dtypes
            (e.g. ``"int4"`` for an int8 array holding int4 values).

    Returns:
        tuple of arrays; int4/int2 unpacked in int8, uint4/uint2 in uint8, float8 as ml_dtypes.
    """
    attrs = dict(attrs or {})
    arrays, in_types = [], []
    for i, x in enumerate(inputs):
        if x is None:
            arrays.append(None)
            in_types.append(None)
            continue
        a = np.asarray(x)
        if a.dtype == np.float64 and not isinstance(x, np.ndarray):
            a = a.astype(np.float32)  # Python floats: float32, as every scale in these ops
        spec = input_dtypes[i] if input_dtypes is not None and input_dtypes[i] is not None else a.dtype
        t = onnx_type(spec)
        a = _as_type(a, t)
        arrays.append(a)
        in_types.append((t, a.ndim))
    out_types = [onnx_type(d) for d in output_dtypes]
    consts = {i: arrays[i] for i in initializers if arrays[i] is not None}
    const_key = tuple((i, arrays[i].dtype.str, arrays[i].shape, arrays[i].tobytes()) for i in sorted(consts))
    key = (engine, op_type, domain, opset, tuple(sorted((k, repr(v)) for k, v in attrs.items())), tuple(in_types),
           const_key, tuple(out_types))
    sess = _CACHE.get(key)
    if sess is None:
        sess = _session(key, _build(op_type, in_types, consts, attrs, out_types, domain, opset), engine)
    feeds = {f"in{i}": a for i, a in enumerate(arrays) if a is not None and i not in consts}
    out_names = [f"out{j}" for j in range(len(out_types))]
    if engine == "ort":
        ovs = sess.run_with_ort_values(out_names, {k: _ort_value(v, in_types[int(k[2:])][0]) for k, v in feeds.items()})
        return tuple(_from_ort_value(ov, t) for ov, t in zip(ovs, out_types))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # reference casts NaN/inf to int32 (its documented bug)
        outs = sess.run(out_names, feeds)
    return tuple(_normalize_output(o, t) for o, t in zip(outs, out_types))


# --------------------------------------------------------------------------- wrappers


def _f32(s):
    """Scales: Python/float64 -> float32; float16/bfloat16 arrays keep their type."""
    a = np.asarray(s)
    return a.astype(np.float32) if a.dtype == np.float64 or a.dtype.kind in "iu" else a


def _out_zero_point(zp, name):
    """A zero point whose dtype names the output type (ONNX convention): NumPy integer, not int64/int32."""
    a = np.asarray(zp)
    if a.dtype.kind not in "iuV" or a.dtype in (np.int32, np.int64):
        raise ValueError(f"{name} must be a NumPy integer scalar/array of the output type (e.g. np.int8(0)), "
                         f"got {a.dtype} {zp!r}")
    return a


def _weights(op_type, const_weights):
    return _WEIGHT_INPUTS[op_type] if const_weights else ()


def _ms_engine(engine):
    if engine != "ort":
        raise ValueError(f"com.microsoft contrib ops run on engine='ort' only (onnx.reference lacks them), "
                         f"got {engine!r}")
    return engine


def run_quantize_linear(x, y_scale, y_zero_point=None, *, axis=1, block_size=0, saturate=None, output_dtype=None,
                        precision=None, engine="ort", opset=None):
    """ONNX QuantizeLinear. Output type: ``output_dtype``, else ``y_zero_point``'s dtype, else uint8.

    ``y_zero_point`` is cast to the output type (so an int8 array with ``output_dtype="int4"``
    is fine). ``saturate`` (float8 only) and ``precision`` (opset 23+) are sent only when given.
    """
    if output_dtype is not None:
        out_t = onnx_type(output_dtype)
    elif y_zero_point is not None:
        out_t = onnx_type(_out_zero_point(y_zero_point, "y_zero_point").dtype)
    else:
        out_t = TensorProto.UINT8
    attrs = {"axis": axis}
    if block_size:
        attrs["block_size"] = block_size
    if saturate is not None:
        attrs["saturate"] = saturate
    if precision is not None:
        attrs["precision"] = onnx_type(precision)
    zp = None if y_zero_point is None else _as_type(y_zero_point, out_t)
    if zp is None and out_t != TensorProto.UINT8:
        attrs["output_dtype"] = out_t
    (y,) = run_onnx_op("QuantizeLinear", [np.asarray(x), _f32(y_scale), zp], attrs, [out_t], engine=engine,
                       opset=opset)
    return y


def run_dequantize_linear(x, x_scale, x_zero_point=None, *, axis=1, block_size=0, x_dtype=None, engine="ort",
                          opset=None):
    """ONNX DequantizeLinear. ``x_dtype`` names x's ONNX type when NumPy lacks it (``"int4"``, ``"uint4"``,
    ``"int2"``...); ``x`` and ``x_zero_point`` are then cast to it. Output: the scale's float type."""
    t = onnx_type(x_dtype) if x_dtype is not None else onnx_type(np.asarray(x).dtype)
    attrs = {"axis": axis}
    if block_size:
        attrs["block_size"] = block_size
    scale = _f32(x_scale)
    zp = None if x_zero_point is None else _as_type(x_zero_point, t)
    (y,) = run_onnx_op("DequantizeLinear", [_as_type(x, t), scale, zp], attrs, [scale.dtype], engine=engine,
                       opset=opset)
    return y


def run_dynamic_quantize_linear(x, *, engine="ort", opset=None):
    """ONNX DynamicQuantizeLinear: float32 x -> (y uint8, y_scale 0-d float32, y_zero_point 0-d uint8)."""
    return run_onnx_op("DynamicQuantizeLinear", [np.asarray(x, np.float32)], {},
                       [np.uint8, np.float32, np.uint8], engine=engine, opset=opset)


def run_matmul_integer(a, b, a_zero_point=None, b_zero_point=None, *, engine="ort", opset=None,
                       const_weights=False):
    """ONNX MatMulInteger: int32 ``(A - a_zp) @ (B - b_zp)`` as ONNX Runtime / the reference computes it."""
    (y,) = run_onnx_op("MatMulInteger", [a, b, a_zero_point, b_zero_point], {}, [np.int32], engine=engine,
                       opset=opset, initializers=_weights("MatMulInteger", const_weights))
    return y


def run_qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, *, engine="ort",
                       opset=None, const_weights=False):
    """ONNX QLinearMatMul; output dtype = ``y_zero_point``'s dtype."""
    zp = _out_zero_point(y_zero_point, "y_zero_point")
    (y,) = run_onnx_op("QLinearMatMul", [a, _f32(a_scale), a_zero_point, b, _f32(b_scale), b_zero_point,
                                         _f32(y_scale), zp], {}, [zp.dtype], engine=engine, opset=opset,
                       initializers=_weights("QLinearMatMul", const_weights))
    return y


def _conv_attrs(auto_pad, dilations, group, kernel_shape, pads, strides):
    attrs = {"auto_pad": auto_pad, "group": group}
    for k, v in (("dilations", dilations), ("kernel_shape", kernel_shape), ("pads", pads), ("strides", strides)):
        if v is not None:
            attrs[k] = [int(i) for i in v]
    return attrs


def run_conv_integer(x, w, x_zero_point=None, w_zero_point=None, *, auto_pad="NOTSET", dilations=None, group=1,
                     kernel_shape=None, pads=None, strides=None, engine="ort", opset=None, const_weights=False):
    """ONNX ConvInteger (NCHW, w (O, C/group, kH, kW)) -> int32."""
    attrs = _conv_attrs(auto_pad, dilations, group, kernel_shape, pads, strides)
    (y,) = run_onnx_op("ConvInteger", [x, w, x_zero_point, w_zero_point], attrs, [np.int32], engine=engine,
                       opset=opset, initializers=_weights("ConvInteger", const_weights))
    return y


def run_qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B=None, *,
                     auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None,
                     engine="ort", opset=None, const_weights=False):
    """ONNX QLinearConv (NCHW); ``B`` int32 (O,) or None; output dtype = ``y_zero_point``'s dtype."""
    attrs = _conv_attrs(auto_pad, dilations, group, kernel_shape, pads, strides)
    zp = _out_zero_point(y_zero_point, "y_zero_point")
    (y,) = run_onnx_op("QLinearConv", [x, _f32(x_scale), x_zero_point, w, _f32(w_scale), w_zero_point,
                                       _f32(y_scale), zp, B], attrs, [zp.dtype], engine=engine, opset=opset,
                       initializers=_weights("QLinearConv", const_weights))
    return y


def run_qlinear_add(a, a_scale, a_zero_point, b, b_scale, b_zero_point, c_scale, c_zero_point, *, engine="ort"):
    """com.microsoft QLinearAdd (ONNX Runtime only); output dtype = ``c_zero_point``'s dtype."""
    zp = _out_zero_point(c_zero_point, "c_zero_point")
    (y,) = run_onnx_op("QLinearAdd", [a, _f32(a_scale), a_zero_point, b, _f32(b_scale), b_zero_point,
                                      _f32(c_scale), zp], {}, [zp.dtype], domain=MS_DOMAIN, engine=_ms_engine(engine))
    return y


def run_qlinear_global_average_pool(x, x_scale, x_zero_point, y_scale, y_zero_point, *, channels_last=0,
                                    engine="ort"):
    """com.microsoft QLinearGlobalAveragePool: NCHW (or NHWC with ``channels_last=1``) -> spatial dims 1."""
    zp = _out_zero_point(y_zero_point, "y_zero_point")
    (y,) = run_onnx_op("QLinearGlobalAveragePool", [x, _f32(x_scale), x_zero_point, _f32(y_scale), zp],
                       {"channels_last": channels_last}, [zp.dtype], domain=MS_DOMAIN, engine=_ms_engine(engine))
    return y


def run_qlinear_sigmoid(x, x_scale, x_zero_point, y_scale, y_zero_point, *, engine="ort"):
    """com.microsoft QLinearSigmoid (lookup table built from the dequantized float sigmoid)."""
    zp = _out_zero_point(y_zero_point, "y_zero_point")
    (y,) = run_onnx_op("QLinearSigmoid", [x, _f32(x_scale), x_zero_point, _f32(y_scale), zp], {}, [zp.dtype],
                       domain=MS_DOMAIN, engine=_ms_engine(engine))
    return y
