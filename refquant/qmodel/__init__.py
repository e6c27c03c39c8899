"""The integer model: a graph of integer nodes plus one profile, run through :mod:`refquant.ops`.

* :mod:`refquant.qmodel.graph` — :class:`~refquant.qmodel.graph.TensorInfo`,
  :class:`~refquant.qmodel.graph.Node` and the op table;
* :mod:`refquant.qmodel.nodes` — how each op runs under the profile;
* :mod:`refquant.qmodel.float_ops` — the float32 ops of layers a model keeps in float;
* :mod:`refquant.qmodel.model` — :class:`~refquant.qmodel.model.QuantizedModel`;
* :mod:`refquant.qmodel.storage` — ``.npz`` files and the size as stored.

Models are made by the flows (:mod:`refquant.ptq`, :mod:`refquant.qat`) or built node by node.
"""

from __future__ import annotations

from .graph import OPS, Node, TensorInfo
from .model import QuantizedModel

__all__ = ["QuantizedModel", "Node", "TensorInfo", "OPS"]
