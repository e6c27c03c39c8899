r"""Plain-loop int8 fully connected, convolution and depthwise convolution: the version to read first.

Each function transcribes a TFLite reference kernel line by line, with the same local names
(``input_offset``, ``output_multiplier``, ``in_x_origin``, ``is_point_inside_image``, ...).
The upstream headers were read in google-ai-edge/LiteRT ``tflite/kernels/internal/reference/integer_ops/``
and tensorflow/tflite-micro ``tensorflow/lite/kernels/internal/reference/integer_ops/``.
Their int8 loops are the same in both.

| function | mirrors |
|---|---|
| :func:`fully_connected_loop` | ``fully_connected.h``: ``FullyConnectedPerChannel`` and ``FullyConnected``, the overloads that take ``output_multiplier`` / ``output_shift`` |
| :func:`conv2d_loop` | ``conv.h``: ``ConvPerChannel`` (int8, with groups) |
| :func:`depthwise_conv2d_loop` | ``depthwise_conv.h``: ``DepthwiseConvPerChannel`` (int8) |
| :func:`compute_padding_height_width` | ``tflite/kernels/padding.h``: ``ComputePaddingHeightWidth``, ``ComputeOutSize`` |

Every output element takes the same five steps. With ``input_offset`` $= -Z_x$ and
``output_offset`` $= Z_y$:

$$ \mathrm{acc} = \sum_{k} w_k \,(x_k + \text{input\_offset}) + b_c \tag{1} $$

$$ r = \mathrm{MBQM}(\mathrm{acc}, q_c, \text{shift}_c)
     = \mathrm{RDBPOT}\big(\mathrm{SRDHM}(\mathrm{acc} \cdot 2^{\max(\text{shift}_c, 0)}, q_c),\, \max(-\text{shift}_c, 0)\big)
     \approx \mathrm{acc} \cdot M_c \tag{2} $$

$$ y = \mathrm{int8}\big(\min(\max(r + \text{output\_offset}, \text{act\_min}), \text{act\_max})\big) \tag{3} $$

Eq. (2) is :func:`refquant.fixedpoint.multiply_by_quantized_multiplier` with ``variant="double"``,
which is ``tflite::MultiplyByQuantizedMultiplier`` in the default build. It rounds twice: half up
in SRDHM, then half away from zero in RDBPOT. The multiplier $M_c = S_x S_w[c] / S_y$ is stored as
$q_c \cdot 2^{\text{shift}_c - 31}$.

**Integer widths.** The loops compute with Python ints, which never overflow. Each array is turned
into Python ints with ``tolist()`` first; ``int8 * int8`` on NumPy scalars would wrap silently.
Upstream's ``acc`` is an int32. A sum outside int32 is signed overflow in C, and compiled code wraps
it. Wrapping once after the bias gives the same value as wrapping after every ``+=``, because
addition modulo $2^{32}$ does not depend on the order. So the loops wrap the exact sum once, after
the bias, and wrap again after ``+ output_offset``. Upstream's comment shows that the products alone
cannot overflow for filters of at most $2^{16}$ taps. The bias is added without a check, and a bias
near the int32 limits does overflow.

**Runtime and offline.** These loops use integers only. Their parameters are computed offline,
where float is allowed:

* $(q_c, \text{shift}_c)$: :func:`refquant.kernels.multiplier.requant_params` with
  ``mode="fixed_double", derivation="f64_ab_div_c"``, i.e. ``QuantizeMultiplier`` of
  ``double(S_x) * double(S_w[c]) / double(S_y)``, as TFLite's ``PopulateConvolutionQuantizationParams``
  computes it;
* ``output_activation_min`` / ``output_activation_max``: :func:`refquant.kernels.multiplier.activation_range`;
* pads and output sizes: :func:`compute_padding_height_width`.

**LiteRT's FULLY_CONNECTED does not run the fixed-point loop.** With the reference kernels
(``BUILTIN_REF``), LiteRT's ``tflite/kernels/fully_connected.cc`` (``FullyConnectedInt8``,
``FullyConnectedPerChannelInt8``) calls the float-scale overloads of the same header. They compute
``static_cast<int32_t>(round(double(acc) * effective_output_scale))``, which is refquant's
``float64_rhaz``: ``refquant.backends.tflite.fully_connected(..., kernel="reference")``.
:func:`fully_connected_loop` is the fixed-point overload, which TFLite Micro's FULLY_CONNECTED calls
(``tensorflow/lite/micro/kernels/fully_connected.cc``).
The two can differ by 1 LSB. For example, $M = 1/2$ and $\mathrm{acc} = -5$ give $-2$ here and $-3$
in LiteRT. LiteRT's reference CONV_2D and DEPTHWISE_CONV_2D for int8 do run the fixed-point loops:
they equal ``refquant.backends.tflite.conv2d`` / ``depthwise_conv2d`` with ``kernel="reference"``.

Added in 0.1.0.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..dtypes import wrap_int32
from ..errors import QuantizationTypeError, QuantizationValueError, ShapeError
from ..fixedpoint import multiply_by_quantized_multiplier

__all__ = ["fully_connected_loop", "conv2d_loop", "depthwise_conv2d_loop", "compute_padding_height_width"]

_INT8_MIN, _INT8_MAX = -128, 127


# --------------------------------------------------------------------------- checks (before any loop)


def _int8_array(a, name: str, ndim: int | None = None) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.int8:
        raise QuantizationTypeError(f"{name} must be an int8 array, got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ShapeError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a


def _int(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise QuantizationTypeError(f"{name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise QuantizationValueError(f"{name} must be in [{lo}, {hi}], got {int(value)}")
    return int(value)


def _per_channel(value, name: str, output_depth: int) -> list[int]:
    """A per-tensor integer (repeated) or a per-channel ``(output_depth,)`` array, as Python ints."""
    v = np.asarray(value)
    if v.dtype.kind not in "iu":
        raise QuantizationTypeError(f"{name} must be an integer or an integer array, got dtype {v.dtype}")
    if v.ndim == 0:
        return [int(v)] * output_depth
    if v.shape != (output_depth,):
        raise ShapeError(f"{name} must be a scalar or have shape ({output_depth},) (one per output channel), "
                         f"got {v.shape}")
    return v.tolist()


def _bias_data(bias, output_depth: int) -> list[int] | None:
    if bias is None:
        return None  # upstream: `if (bias_data)`
    b = np.asarray(bias)
    if b.dtype != np.int32:
        raise QuantizationTypeError(f"bias must be an int32 array or None, got dtype {b.dtype}")
    if b.shape != (output_depth,):
        raise ShapeError(f"bias must have shape ({output_depth},) (one per output channel), got {b.shape}")
    return b.tolist()


def _output_params(input_offset, output_offset, output_activation_min, output_activation_max):
    input_offset = _int(input_offset, "input_offset", -_INT8_MAX, -_INT8_MIN)  # -Z_x, Z_x in int8
    output_offset = _int(output_offset, "output_offset", _INT8_MIN, _INT8_MAX)
    lo = _int(output_activation_min, "output_activation_min", _INT8_MIN, _INT8_MAX)
    hi = _int(output_activation_max, "output_activation_max", _INT8_MIN, _INT8_MAX)
    if lo > hi:
        raise QuantizationValueError(f"output_activation_min must be <= output_activation_max, got {lo} > {hi}")
    return input_offset, output_offset, lo, hi


def _geometry(input_hw, filter_hw, stride_hw, dilation_hw, pad_hw, output_hw):
    """Checked (stride, dilation, pad, output size) for one spatial axis each of height and width."""
    out = []
    for axis, n, k, s, d, p, o in zip(("height", "width"), input_hw, filter_hw, stride_hw, dilation_hw, pad_hw,
                                      output_hw):
        s = _int(s, f"stride_{axis}", 1, 2**31 - 1)
        d = _int(d, f"dilation_{axis}_factor", 1, 2**31 - 1)
        p = _int(p, f"pad_{axis}", 0, 2**31 - 1)
        if o is None:  # symmetric padding; SAME's odd pixel needs compute_padding_height_width
            o = (n + 2 * p - ((k - 1) * d + 1)) // s + 1
            if o < 1:
                raise ShapeError(f"the dilated filter {axis} {(k - 1) * d + 1} is larger than the padded input "
                                 f"{axis} {n + 2 * p} (empty output)")
        out.append((s, d, p, _int(o, f"output_{axis}", 0, 2**31 - 1)))
    return out


# --------------------------------------------------------------------------- the loops (runtime: integers only)


def fully_connected_loop(x, w, bias, input_offset, output_offset, output_multiplier, output_shift,
                         output_activation_min, output_activation_max) -> np.ndarray:
    r"""int8 fully connected with fixed-point requantization, as a plain loop.

    $$ y_{b,c} = \mathrm{clamp}\Big(\mathrm{MBQM}\big(\textstyle\sum_d w_{c,d}\,(x_{b,d} + \text{input\_offset})
    + \text{bias}_c,\; q_c, \text{shift}_c\big) + \text{output\_offset}\Big) $$

    Mirrors TFLite ``reference_integer_ops::FullyConnectedPerChannel`` (``fully_connected.h``,
    the ``output_multiplier`` overload), and ``FullyConnected`` for a scalar multiplier with
    symmetric weights (``weights_offset`` 0, as the int8 spec requires). This is what TFLite Micro
    runs. LiteRT's reference FULLY_CONNECTED rounds in float64 instead, and can differ by 1 LSB
    (see the module docstring).

    Args:
        x: int8 ``(..., accum_depth)``; the leading dimensions are the batches (``FlatSizeSkipDim``).
        w: int8 ``(output_depth, accum_depth)``, zero point 0.
        bias: int32 ``(output_depth,)``, or ``None`` (no bias).
        input_offset: $-Z_x$, an int in $[-127, 128]$.
        output_offset: $Z_y$, an int in $[-128, 127]$.
        output_multiplier: $q$, int32 in $[2^{30}, 2^{31})$ (or 0), a scalar or ``(output_depth,)``.
        output_shift: + left / − right, in $[-31, 31]$, a scalar or ``(output_depth,)``.
        output_activation_min, output_activation_max: The clamp, ints in $[-128, 127]$.

    Returns:
        int8 ``(batches, output_depth)``.

    Rounding and saturation: the sum is exact, then wrapped to int32 once (the module
    docstring explains why). MBQM rounds half up, then half away from zero, and saturates
    only at ``INT32_MIN * INT32_MIN``. ``+ output_offset`` wraps as an int32 addition. The
    clamp makes the cast to int8 exact.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: a bad argument (named).
    """
    x = _int8_array(x, "x")
    w = _int8_array(w, "w", 2)
    output_depth, accum_depth = w.shape
    if x.ndim < 1 or x.shape[-1] != accum_depth:
        raise ShapeError(f"x must have shape (..., accum_depth) with accum_depth = w.shape[1] = {accum_depth}, "
                         f"got {x.shape}")
    batches = int(np.prod(x.shape[:-1]))
    bias_data = _bias_data(bias, output_depth)
    output_multiplier = _per_channel(output_multiplier, "output_multiplier", output_depth)
    output_shift = _per_channel(output_shift, "output_shift", output_depth)
    input_offset, output_offset, output_activation_min, output_activation_max = _output_params(
        input_offset, output_offset, output_activation_min, output_activation_max)
    input_data = x.reshape(batches, accum_depth).tolist()  # Python ints
    filter_data = w.tolist()
    output_data = np.zeros((batches, output_depth), np.int8)  # (batches, output_depth) int8

    for b in range(batches):
        for out_c in range(output_depth):
            acc = 0
            for d in range(accum_depth):
                input_val = input_data[b][d]
                filter_val = filter_data[out_c][d]
                acc += filter_val * (input_val + input_offset)  # eq. (1)
            if bias_data is not None:
                acc += bias_data[out_c]
            acc = wrap_int32(acc)  # upstream's int32 acc
            acc = int(multiply_by_quantized_multiplier(acc, output_multiplier[out_c], output_shift[out_c]))  # (2)
            acc = wrap_int32(acc + output_offset)  # int32 `acc += output_offset`
            acc = max(acc, output_activation_min)  # eq. (3)
            acc = min(acc, output_activation_max)
            output_data[b, out_c] = acc  # static_cast<int8_t>
    return output_data


def conv2d_loop(x, w, bias, input_offset, output_offset, output_multiplier, output_shift,
                output_activation_min, output_activation_max, *, stride_height=1, stride_width=1,
                dilation_height_factor=1, dilation_width_factor=1, pad_height=0, pad_width=0,
                output_height=None, output_width=None) -> np.ndarray:
    r"""int8 2-D convolution (NHWC, OHWI weights, optional groups) with fixed-point requantization.

    For output channel $o$ in group $g = \lfloor o / (O/G) \rfloor$, with
    $y_0 = \text{out\_y}\,s_H - p_H$ and $x_0 = \text{out\_x}\,s_W - p_W$:

    $$ \mathrm{acc} = \sum_{i,j,c}\, w[o,i,j,c]\,\big(x[n,\, y_0 + d_H i,\, x_0 + d_W j,\, c + g C_g] + \text{input\_offset}\big) + \text{bias}_o $$

    The sum skips taps outside the image. This is zero padding: a padded pixel equal to
    $Z_x$ would contribute $w \cdot 0$. Then eqs. (2)–(3) of the module docstring.
    Mirrors TFLite ``reference_integer_ops::ConvPerChannel`` (``conv.h``, int8). A per-tensor
    model passes the same scalar for every channel, as TFLite does.

    Args:
        x: int8 ``(batches, input_height, input_width, input_depth)``.
        w: int8 ``(output_depth, filter_height, filter_width, filter_input_depth)``, zero point 0.
            ``groups = input_depth / filter_input_depth`` must divide ``output_depth``.
        bias, input_offset, output_offset, output_multiplier, output_shift, output_activation_min, output_activation_max: As in :func:`fully_connected_loop`.
        stride_height, stride_width, dilation_height_factor, dilation_width_factor: ints >= 1.
        pad_height, pad_width: Padding before the first row and column (TFLite's
            ``padding_values``), ints >= 0.
        output_height, output_width: Default ``(n + 2 p - d (k - 1) - 1) // s + 1``, which
            assumes the same padding after. For SAME padding take both values, with the pads,
            from :func:`compute_padding_height_width`: SAME puts an odd padding pixel at the end.

    Returns:
        int8 ``(batches, output_height, output_width, output_depth)``.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: a bad argument (named).
    """
    x = _int8_array(x, "x", 4)
    w = _int8_array(w, "w", 4)
    batches, input_height, input_width, input_depth = x.shape
    output_depth, filter_height, filter_width, filter_input_depth = w.shape
    if filter_input_depth < 1 or input_depth % filter_input_depth:
        raise ShapeError(f"input_depth x.shape[3] = {input_depth} must be a multiple of filter_input_depth "
                         f"w.shape[3] = {filter_input_depth}")
    groups = input_depth // filter_input_depth
    if output_depth % groups:
        raise ShapeError(f"output_depth w.shape[0] = {output_depth} must be divisible by groups = {groups}")
    filters_per_group = output_depth // groups
    (stride_height, dilation_height_factor, pad_height, output_height), \
        (stride_width, dilation_width_factor, pad_width, output_width) = _geometry(
            (input_height, input_width), (filter_height, filter_width), (stride_height, stride_width),
            (dilation_height_factor, dilation_width_factor), (pad_height, pad_width), (output_height, output_width))
    bias_data = _bias_data(bias, output_depth)
    output_multiplier = _per_channel(output_multiplier, "output_multiplier", output_depth)
    output_shift = _per_channel(output_shift, "output_shift", output_depth)
    input_offset, output_offset, output_activation_min, output_activation_max = _output_params(
        input_offset, output_offset, output_activation_min, output_activation_max)
    input_data, filter_data = x.tolist(), w.tolist()  # Python ints
    output_data = np.zeros((batches, output_height, output_width, output_depth), np.int8)  # NHWC int8

    for batch in range(batches):
        for out_y in range(output_height):
            in_y_origin = (out_y * stride_height) - pad_height
            for out_x in range(output_width):
                in_x_origin = (out_x * stride_width) - pad_width
                for out_channel in range(output_depth):
                    group = out_channel // filters_per_group
                    acc = 0
                    for filter_y in range(filter_height):
                        in_y = in_y_origin + dilation_height_factor * filter_y
                        for filter_x in range(filter_width):
                            in_x = in_x_origin + dilation_width_factor * filter_x
                            # Zero padding by omitting the areas outside the image.
                            is_point_inside_image = (in_x >= 0) and (in_x < input_width) and (in_y >= 0) and (
                                in_y < input_height)
                            if not is_point_inside_image:
                                continue
                            for in_channel in range(filter_input_depth):
                                input_val = input_data[batch][in_y][in_x][in_channel + group * filter_input_depth]
                                filter_val = filter_data[out_channel][filter_y][filter_x][in_channel]
                                acc += filter_val * (input_val + input_offset)  # eq. (1)
                    if bias_data is not None:
                        acc += bias_data[out_channel]
                    acc = wrap_int32(acc)  # upstream's int32 acc
                    acc = int(multiply_by_quantized_multiplier(
                        acc, output_multiplier[out_channel], output_shift[out_channel]))  # eq. (2)
                    acc = wrap_int32(acc + output_offset)  # int32 `acc += output_offset`
                    acc = max(acc, output_activation_min)  # eq. (3)
                    acc = min(acc, output_activation_max)
                    output_data[batch, out_y, out_x, out_channel] = acc  # static_cast<int8_t>
    return output_data


def depthwise_conv2d_loop(x, w, bias, input_offset, output_offset, output_multiplier, output_shift,
                          output_activation_min, output_activation_max, *, depth_multiplier=1, stride_height=1,
                          stride_width=1, dilation_height_factor=1, dilation_width_factor=1, pad_height=0,
                          pad_width=0, output_height=None, output_width=None) -> np.ndarray:
    r"""int8 depthwise 2-D convolution (NHWC, 1HWO weights) with fixed-point requantization.

    Output channel ``output_channel = m + in_channel * depth_multiplier`` reads input channel
    ``in_channel`` only:

    $$ \mathrm{acc} = \sum_{i,j}\, w[0,i,j,o]\,\big(x[n,\, y_0 + d_H i,\, x_0 + d_W j,\, \lfloor o/m \rfloor] + \text{input\_offset}\big) + \text{bias}_o $$

    The sum skips taps outside the image, as in :func:`conv2d_loop`. Then eqs. (2)–(3) of
    the module docstring. Mirrors TFLite ``reference_integer_ops::DepthwiseConvPerChannel``
    (``depthwise_conv.h``, int8). An older TensorFlow revision of that loop walks the channels
    in blocks of 32. That changes only the order in which independent outputs are written.

    Args:
        x: int8 ``(batches, input_height, input_width, input_depth)``.
        w: int8 ``(1, filter_height, filter_width, output_depth)``, zero point 0, with
            ``output_depth == input_depth * depth_multiplier``.
        depth_multiplier: int >= 1.
        Others: as in :func:`conv2d_loop`; per-channel arrays run along ``output_depth``
            (TFLite's quantized dimension 3).

    Returns:
        int8 ``(batches, output_height, output_width, output_depth)``.

    Raises:
        QuantizationTypeError, QuantizationValueError, ShapeError: a bad argument (named).
    """
    x = _int8_array(x, "x", 4)
    w = _int8_array(w, "w", 4)
    batches, input_height, input_width, input_depth = x.shape
    if w.shape[0] != 1:
        raise ShapeError(f"w must have shape (1, filter_height, filter_width, output_depth), got {w.shape}")
    _, filter_height, filter_width, output_depth = w.shape
    depth_multiplier = _int(depth_multiplier, "depth_multiplier", 1, 2**31 - 1)
    if output_depth != input_depth * depth_multiplier:
        raise ShapeError(f"output_depth w.shape[3] = {output_depth} must be input_depth * depth_multiplier = "
                         f"{input_depth} * {depth_multiplier} = {input_depth * depth_multiplier}")
    (stride_height, dilation_height_factor, pad_height, output_height), \
        (stride_width, dilation_width_factor, pad_width, output_width) = _geometry(
            (input_height, input_width), (filter_height, filter_width), (stride_height, stride_width),
            (dilation_height_factor, dilation_width_factor), (pad_height, pad_width), (output_height, output_width))
    bias_data = _bias_data(bias, output_depth)
    output_multiplier = _per_channel(output_multiplier, "output_multiplier", output_depth)
    output_shift = _per_channel(output_shift, "output_shift", output_depth)
    input_offset, output_offset, output_activation_min, output_activation_max = _output_params(
        input_offset, output_offset, output_activation_min, output_activation_max)
    input_data, filter_data = x.tolist(), w[0].tolist()  # Python ints; filter_data[filter_y][filter_x][o]
    output_data = np.zeros((batches, output_height, output_width, output_depth), np.int8)  # NHWC int8

    for batch in range(batches):
        for out_y in range(output_height):
            for out_x in range(output_width):
                for in_channel in range(input_depth):
                    for m in range(depth_multiplier):
                        output_channel = m + in_channel * depth_multiplier
                        in_x_origin = (out_x * stride_width) - pad_width
                        in_y_origin = (out_y * stride_height) - pad_height
                        acc = 0
                        for filter_y in range(filter_height):
                            for filter_x in range(filter_width):
                                in_x = in_x_origin + dilation_width_factor * filter_x
                                in_y = in_y_origin + dilation_height_factor * filter_y
                                # Zero padding by omitting the areas outside the image.
                                is_point_inside_image = (in_x >= 0) and (in_x < input_width) and (in_y >= 0) and (
                                    in_y < input_height)
                                if is_point_inside_image:
                                    input_val = input_data[batch][in_y][in_x][in_channel]
                                    filter_val = filter_data[filter_y][filter_x][output_channel]
                                    acc += filter_val * (input_val + input_offset)  # eq. (1)
                        if bias_data is not None:
                            acc += bias_data[output_channel]
                        acc = wrap_int32(acc)  # upstream's int32 acc
                        acc = int(multiply_by_quantized_multiplier(
                            acc, output_multiplier[output_channel], output_shift[output_channel]))  # eq. (2)
                        acc = wrap_int32(acc + output_offset)  # int32 `acc += output_offset`
                        acc = max(acc, output_activation_min)  # eq. (3)
                        acc = min(acc, output_activation_max)
                        output_data[batch, out_y, out_x, output_channel] = acc  # static_cast<int8_t>
    return output_data


# --------------------------------------------------------------------------- geometry (offline)


def compute_padding_height_width(padding, input_height, input_width, filter_height, filter_width, *,
                                 stride_height=1, stride_width=1, dilation_height_factor=1,
                                 dilation_width_factor=1) -> dict:
    r"""TFLite's SAME / VALID geometry: the leading pads and the output size. Offline code.

    With the effective filter size $k' = d(k-1) + 1$:

    * output size: SAME $\lceil n / s \rceil$, VALID $\lfloor (n + s - k') / s \rfloor$;
    * total padding $t = \max((\text{out} - 1)s + k' - n, 0)$; the pad before is
      $\lfloor t/2 \rfloor$. The odd pixel, upstream's ``height_offset`` / ``width_offset``,
      goes after and needs no argument: the loops skip every tap outside the image.

    Mirrors ``tflite::ComputePaddingHeightWidth`` and ``ComputeOutSize`` (LiteRT
    ``tflite/kernels/padding.h``).

    Args:
        padding: ``"SAME"`` or ``"VALID"``.
        input_height, input_width, filter_height, filter_width: ints >= 1.
        stride_height, stride_width, dilation_height_factor, dilation_width_factor: ints >= 1.

    Returns:
        ``{"pad_height", "pad_width", "output_height", "output_width"}`` as Python ints, ready
        to pass as keywords to :func:`conv2d_loop` / :func:`depthwise_conv2d_loop`.

    Raises:
        QuantizationValueError: an unknown ``padding`` or a size below 1.
        ShapeError: a VALID output with no rows or columns.
    """
    if padding not in ("SAME", "VALID"):
        raise QuantizationValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
    result = {}
    for axis, n, k, s, d in (("height", input_height, filter_height, stride_height, dilation_height_factor),
                             ("width", input_width, filter_width, stride_width, dilation_width_factor)):
        n, k = _int(n, f"input_{axis}", 1, 2**31 - 1), _int(k, f"filter_{axis}", 1, 2**31 - 1)
        s = _int(s, f"stride_{axis}", 1, 2**31 - 1)
        d = _int(d, f"dilation_{axis}_factor", 1, 2**31 - 1)
        effective_filter_size = (k - 1) * d + 1
        out_size = (n + s - 1) // s if padding == "SAME" else (n + s - effective_filter_size) // s
        if out_size < 1:
            raise ShapeError(f"VALID padding: the dilated filter {axis} {effective_filter_size} is larger than the "
                             f"input {axis} {n} (empty output)")
        total_padding = max((out_size - 1) * s + effective_filter_size - n, 0)
        result[f"pad_{axis}"] = total_padding // 2
        result[f"output_{axis}"] = out_size
    return result
