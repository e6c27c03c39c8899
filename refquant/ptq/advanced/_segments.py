"""Run an integer model one segment of nodes at a time (internal).

The layer-by-layer methods need each layer's input from the model *as rewritten so far*. Tracing
the whole model again for every layer costs one run per layer; instead, :class:`SegmentRunner`
keeps, per calibration batch, the tensors still to be read, and runs only the nodes between the
last layer and the next one: each node once per batch, with the parameters it has when it runs
(a layer rewritten before its segment runs is run rewritten). A segment is an ordinary
:class:`~refquant.qmodel.QuantizedModel` whose inputs are the live tensors it reads.
"""

from __future__ import annotations

from ...qmodel import QuantizedModel

__all__ = ["SegmentRunner"]


class SegmentRunner:
    """The live tensors of ``qmodel`` on ``batches`` (one-input models), advanced in node order."""

    def __init__(self, qmodel: QuantizedModel, batches: list):
        self.names = [n.name for n in qmodel.nodes]
        self.last_use = {t: len(self.names) for t in qmodel.outputs}  # tensor -> last node index reading it
        for i, n in enumerate(qmodel.nodes):
            for t in n.inputs:
                self.last_use[t] = i
        self.pos = 0
        self.envs = [{qmodel.inputs[0]: b} for b in batches]

    def tensor(self, qmodel: QuantizedModel, node_name: str, tensor: str) -> list:
        """The value of ``tensor`` (an input of node ``node_name``) per batch, running the nodes before
        that node which have not run yet. Nodes must be asked for in graph order."""
        upto = self.names.index(node_name)
        if upto < self.pos:
            raise AssertionError(f"node {node_name!r} asked for after a later node: layers go in graph order")
        self._advance(qmodel, upto)
        return [env[tensor] for env in self.envs]

    def _advance(self, qmodel: QuantizedModel, upto: int) -> None:
        nodes = qmodel.nodes[self.pos:upto]
        produced = {n.output for n in nodes}
        inputs = list(dict.fromkeys(t for n in nodes for t in n.inputs if t not in produced))
        outputs = [n.output for n in nodes if self.last_use.get(n.output, -1) >= upto]
        if outputs:
            segment = QuantizedModel(nodes, qmodel.tensors, inputs, outputs, profile=qmodel.profile, isa=qmodel.isa)
            for env in self.envs:
                out = segment.run({t: env[t] for t in inputs} if len(inputs) > 1 else env[inputs[0]])
                env.update(out if isinstance(out, dict) else {outputs[0]: out})
        self.pos = upto
        for env in self.envs:
            for t in [t for t in env if self.last_use.get(t, -1) < upto]:
                del env[t]
