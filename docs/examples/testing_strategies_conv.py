"""Convolution geometries with hypothesis (how-to "Use refquant as the golden reference", §5).

``my_conv_integer`` stands for a convolution kernel under test (here the int32 accumulator, ONNX
``ConvInteger``): ``conv_geometries()`` draws groups, depthwise, strides, dilations, asymmetric pads
and odd sizes; each geometry spells its attributes for the face (``onnx_attrs()``)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from refquant.backends.onnx import conv_integer
from refquant.testing import assert_bit_exact
from refquant.testing.strategies import conv_geometries


def my_conv_integer(x, w, x_zero_point, g):
    """The code under test: sum (x - Z_x) * w in int32, one kernel tap at a time (NCHW, OIHW)."""
    t, left, b, r = g.pads
    xp = np.pad(x.astype(np.int32) - x_zero_point, ((0, 0), (0, 0), (t, b), (left, r)))
    (oh, ow), (sh, sw), (dh, dw) = g.output_size, g.stride, g.dilation
    cg, og = g.in_channels // g.groups, g.out_channels // g.groups
    y = np.zeros((g.batch, g.out_channels, oh, ow), np.int32)
    for o in range(g.out_channels):
        c = (o // og) * cg                                  # the first input channel of o's group
        for i in range(g.kernel[0]):
            for j in range(g.kernel[1]):
                patch = xp[:, c:c + cg, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[:, o] += np.einsum("nchw,c->nhw", patch, w[o, :, i, j].astype(np.int32))
    return y


seen = []


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(g=conv_geometries(), seed=st.integers(0, 2**32 - 1), x_zero_point=st.integers(0, 255))
def test_my_conv_integer(g, seed, x_zero_point):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, g.input_shape("NCHW")).astype(np.uint8)
    w = rng.integers(-128, 128, g.weight_shape("OIHW")).astype(np.int8)
    want = conv_integer(x, w, np.uint8(x_zero_point), **g.onnx_attrs())      # the oracle
    assert_bit_exact(my_conv_integer(x, w, x_zero_point, g), want)
    seen.append(g)


if __name__ == "__main__":
    test_my_conv_integer()
    grouped = sum(1 < g.groups < g.in_channels for g in seen)
    depthwise = sum(g.depthwise for g in seen)
    asymmetric = sum(g.pads[:2] != g.pads[2:] for g in seen)
    print(f"my_conv_integer == ConvInteger on {len(seen)} geometries: {depthwise} depthwise, {grouped} grouped, "
          f"{asymmetric} with asymmetric pads; e.g. {seen[-1]}")
    assert len(seen) == 100 and depthwise and grouped and asymmetric
