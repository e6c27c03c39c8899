"""Graph passes on float :mod:`refquant.nn` models: the rewrites a quantization flow runs before
it chooses any scale.

| pass | what it does | outputs afterwards |
|---|---|---|
| :func:`remove_identities` | drops ``Identity`` and ``Dropout`` (identities in evaluation mode) | bit-identical |
| :func:`fold_batch_norm` | Conv2d/Linear + BatchNorm → one Conv2d/Linear with bias | equal up to float32 rounding |
| :func:`prepare_for_quantization` | the two above, in that order | equal up to float32 rounding |
| :func:`cross_layer_equalization` | rescales the channels between two layers (opt-in) | equal up to float32 rounding; ReLU6 → ReLU |

Every pass checks that its input is a :class:`refquant.nn.Module`, works at any depth of
:class:`refquant.nn.Sequential` and :class:`refquant.nn.Residual` containers, and returns a
**new model in evaluation mode**; the input is never modified. The new model is a
``copy.deepcopy`` of the input (any Module subclass, every dtype, buffer, ``requires_grad`` flag
and ``weight_transform`` kept) without the layers' forward caches and without hooks: a hook
observed a layer of the input model, and a pass changes what layers output. Layers are named in
error messages by their dotted names in the input model (``"3.body.1"``).

Fusing ReLU/ReLU6 into the clamp of the integer layer before them is not a pass here: it
happens when a model is lowered to integer nodes, where the clamp's bounds depend on the
output's scale. See [Learn: BN folding, fusion and equalization](../learn/bn-folding-and-fusion.md).
"""

from .batchnorm import fold_batch_norm, fold_parameters
from .equalization import cross_layer_equalization, equalization_scales, input_channel_ranges, output_channel_ranges
from .identities import IDENTITY_LAYERS, remove_identities
from .pipeline import prepare_for_quantization

__all__ = ["fold_batch_norm", "fold_parameters", "remove_identities", "IDENTITY_LAYERS", "prepare_for_quantization",
           "cross_layer_equalization", "equalization_scales", "output_channel_ranges", "input_channel_ranges"]
