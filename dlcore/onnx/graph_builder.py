"""GraphBuilder: collects the ONNX nodes and initializers that the converters add."""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from dlcore.backend import to_numpy


class GraphBuilder:
    """ONNX nodes in the order added (the graph's topological order) and initializers by name;
    a layer called several times (shared weights) gets its initializers once."""

    def __init__(self):
        self.nodes = []
        self.initializers = {}

    def node(self, op_type: str, inputs: list[str], outputs: list[str], **attributes) -> None:
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=outputs[0], **attributes))

    def initializer(self, name: str, array) -> str:
        """Add `array` (NumPy or the backend's) as initializer `name` once; returns the name."""
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(to_numpy(array)), name)
        return name
