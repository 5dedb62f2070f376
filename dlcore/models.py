"""Models: one graph engine behind the functional Model, Sequential and MultiInput.

    x = dlcore.Input((1, 28, 28), name="image")
    h = Conv2D(1, 16, 3, padding="same", activation="relu")(x)
    y = Conv2D(16, 16, 3, padding="same")(h)
    out = Dense(16 * 28 * 28, 10)(Flatten()(ReLU()(Add()([h, y]))))     # a residual block
    model = dlcore.Model(x, out)

A model is a directed acyclic graph of nodes, each one call of a layer (dlcore.graph);
Sequential and MultiInput only build such graphs. Running it (dlcore.graph.engine) keeps
the forward caches per node, so a layer used twice gets both gradients summed. Layers may
be shared between models (a pretrained base under a new head); run backward on the model
that ran the last forward.
"""
from __future__ import annotations

import numpy as np

from dlcore import checkpoint, training
from dlcore.backend import to_numpy
from dlcore.graph import fusion, topology
from dlcore.graph.engine import NodeStep, Plan
from dlcore.graph.tensor import Input, SymbolicTensor
from dlcore.layers.base import Layer, batch_shape_text
from dlcore.layers.merge import FlattenConcatenate
from dlcore.parameter import Parameter


def _as_list(tensors) -> list:
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


class Model:
    """A graph of layer calls from `inputs` (dlcore.Input tensors) to `outputs`, as Keras'
    functional Model: `model(*arrays)` runs forward (one array per input; one output, or a
    tuple of them), `model.backward(*douts)` runs backward (one gradient per output, None for
    an output without loss) and returns the input gradients asked for by `needs_input_grad`
    (a bool, or one per input; None where not asked).

    Checked when built: the outputs depend on the inputs only, every input is used, layer
    names are unique (unnamed layers are named Keras-style, "dense", "dense_1"), shapes fit.
    """

    def __init__(self, inputs, outputs, name: str | None = None, needs_input_grad=False):
        self.name = name
        self.inputs = _as_list(inputs)
        self.outputs = _as_list(outputs)
        owner = self.describe()
        if not self.inputs or not self.outputs:
            raise ValueError(f"{owner}: needs at least one input and one output")
        self.nodes = topology.topological_order(self.outputs)
        topology.check_graph(owner, self.inputs, self.outputs, self.nodes)
        unique = list({id(node.layer): node.layer for node in self.nodes}.values())
        try:
            topology.name_layers(owner, unique)
        except ValueError as error:
            raise ValueError(f"{error}{self._naming_hint()}") from None
        self.layers = unique
        self.input_names = topology.name_inputs(self.inputs)
        self._node_names = topology.name_nodes(self.nodes)
        self.needs_input_grad = needs_input_grad
        self.fuse = True  # also empties the cache of plans (one per set of outputs)
        self._caches = None

    def _naming_hint(self) -> str:
        return ""

    def describe(self) -> str:
        return f"{type(self).__name__} {self.name!r}" if self.name else type(self).__name__

    # ---- the graph
    @property
    def node_names(self) -> list[str]:
        """Node names in execution order: layer names, "<layer>:k" for further calls of one."""
        return [self._node_names[id(node)] for node in self.nodes]

    @property
    def output_names(self) -> list[str]:
        return [self._tensor_name(t) for t in self.outputs]

    def _tensor_name(self, tensor: SymbolicTensor) -> str:
        if tensor.node is None:
            return self.input_names[[id(t) for t in self.inputs].index(id(tensor))]
        return self._node_names[id(tensor.node)]

    def output_of(self, name: str) -> SymbolicTensor:
        """The symbolic output of node `name`, to build a new model on this one's nodes:
        `Model(base.inputs, Dense(64, 10)(base.output_of("flatten")))` (transfer learning)."""
        for node in self.nodes:
            if self._node_names[id(node)] == name:
                return node.output
        raise KeyError(f"{self.describe()} has no layer {name!r}; its layers are: {', '.join(self.node_names)}")

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        valid = ", ".join(layer.name for layer in self.layers)
        raise KeyError(f"{self.describe()} has no layer {name!r}; its layers are: {valid}")

    def __getitem__(self, name: str) -> Layer:
        return self.layer(name)

    @property
    def fuse(self) -> bool:
        """Whether the graph passes of dlcore.graph.fusion rewrite the execution plan (default:
        on; the gradients are the same either way)."""
        return self._fuse

    @fuse.setter
    def fuse(self, value: bool):
        self._fuse = bool(value)
        self._plans = {}

    def plan(self, outputs=None) -> Plan:
        """The execution plan computing `outputs` (default: the model's) from the inputs."""
        outputs = self.outputs if outputs is None else outputs
        key = tuple(id(t) for t in outputs)
        if key not in self._plans:
            steps = [NodeStep(node, self._node_names[id(node)]) for node in topology.topological_order(outputs)]
            if self._fuse:
                for graph_pass in fusion.PASSES:
                    steps = graph_pass(steps, outputs)
            self._plans[key] = Plan(self.inputs, outputs, steps)
        return self._plans[key]

    # ---- running
    def __call__(self, *inputs):
        return self.forward(*inputs)

    def forward(self, *inputs):
        """The outputs for one array per input (an array, or a tuple for several outputs);
        in training mode the caches for backward are kept."""
        outputs, self._caches = self._run(self.plan(), inputs, keep_caches=self.training)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _run(self, plan: Plan, inputs, keep_caches: bool):
        self._check_inputs(inputs)
        try:
            return plan.forward(inputs, keep_caches)
        except ValueError as error:
            if type(error) is not ValueError:
                raise
            shapes = ", ".join(str(tuple(x.shape)) for x in inputs)
            raise ValueError(f"{error} (in {self.describe()} called on input shape {shapes})") from error

    def _check_inputs(self, inputs):
        if len(inputs) != len(self.inputs):
            names = ", ".join(self.input_names)
            raise ValueError(f"{self.describe()} takes {len(self.inputs)} input(s) ({names}), got {len(inputs)}")
        if any(isinstance(x, SymbolicTensor) for x in inputs):
            raise TypeError(f"{self.describe()} runs on arrays; to build on its layers, use its tensors: "
                            "dlcore.Model(base.inputs, new_layer(base.output_of(name)))")
        sizes = set()
        for name, tensor, x in zip(self.input_names, self.inputs, inputs):
            if not hasattr(x, "shape"):
                continue  # the first layer reading it says what it expected
            sizes.add(int(x.shape[0]) if x.ndim else None)
            expected = tensor.shape
            if expected is not None and not (
                    x.ndim == len(expected) + 1 and all(e is None or e == d for e, d in zip(expected, x.shape[1:]))):
                raise ValueError(f"{self.describe()}: input {name!r} must have shape {batch_shape_text(expected)}, "
                                 f"got {tuple(x.shape)}")
        if len(sizes) > 1:
            raise ValueError(f"{self.describe()}: the inputs have different numbers of samples "
                             f"{[int(x.shape[0]) for x in inputs if hasattr(x, 'shape')]}")

    def backward(self, *douts):
        """dL/d(outputs) -> the input gradients asked for by `needs_input_grad` (one array or
        None for a single-input model, else a tuple); sets every trainable parameter's .grad."""
        if len(douts) != len(self.outputs):
            raise ValueError(f"{self.describe()}.backward takes one gradient per output ({len(self.outputs)}: "
                             f"{', '.join(self.output_names)}), got {len(douts)}")
        if self._caches is None:
            raise RuntimeError(f"{self.describe()}: backward needs a forward pass in training mode first "
                               "(each forward's caches serve one backward)")
        caches, self._caches = self._caches, None
        grads = self.plan().backward(caches, list(douts), self._input_grad_flags())
        return grads[0] if len(grads) == 1 else tuple(grads)

    def _input_grad_flags(self) -> list[bool]:
        flags = self.needs_input_grad
        if isinstance(flags, (list, tuple)):
            if len(flags) != len(self.inputs):
                raise ValueError(f"{self.describe()}: needs_input_grad has {len(flags)} flags for "
                                 f"{len(self.inputs)} inputs")
            return [bool(f) for f in flags]
        return [bool(flags)] * len(self.inputs)

    # ---- parameters
    def named_parameters(self) -> dict[str, Parameter]:
        """{'conv2d.weight': Parameter, ...} in layer order."""
        return {f"{layer.name}.{key}": p for layer in self.layers for key, p in layer.parameters().items()}

    def parameters(self) -> list[Parameter]:
        return list(self.named_parameters().values())

    def named_buffers(self) -> dict[str, object]:
        return {f"{layer.name}.{key}": b for layer in self.layers for key, b in layer.buffers().items()}

    # ---- transfer learning: freezing and feature extraction
    def freeze(self, *names: str, up_to: str | None = None):
        """Stop training the named layers and, with `up_to`, node `up_to`'s layer and every
        layer it depends on (for a Sequential: the first layers up to and including it); with
        neither, every layer. Optimizers skip frozen parameters and backward skips the part of
        the graph that leads to no trainable parameter. Unknown names raise KeyError listing
        the valid ones. Returns the model."""
        for layer in self._select_layers(names, up_to):
            layer.freeze()
        return self

    def unfreeze(self, *names: str, up_to: str | None = None):
        """Resume training the chosen layers (chosen as in `freeze`). Returns the model."""
        for layer in self._select_layers(names, up_to):
            layer.freeze(False)
        return self

    def _select_layers(self, names, up_to) -> list[Layer]:
        if not names and up_to is None:
            return list(self.layers)
        chosen = [self.layer(name) for name in names]
        if up_to is not None:
            chosen += [node.layer for node in topology.topological_order([self.output_of(up_to)])]
        return chosen

    def up_to(self, name: str) -> Model:
        """A model from the inputs that node `name` depends on to its output, sharing layers."""
        output = self.output_of(name)
        nodes = {id(n) for n in topology.topological_order([output])}
        used = [t for t in self.inputs if any(id(n) in nodes and any(i is t for i in n.inputs) for n in self.nodes)]
        return Model(used, output)

    def features(self, x, name: str, batch_size: int = 1000) -> np.ndarray:
        """The output of node `name` (a layer's name) for every sample of x, in eval mode, as
        NumPy; only the nodes it depends on run. x is an array (N, ...) or, for several
        inputs, a tuple of them; the result has the node's output shape, e.g. (N, 64, 7, 7)
        for the notes' "pool2". Unknown names raise KeyError listing the valid ones."""
        plan = self.plan([self.output_of(name)])
        inputs = training.as_inputs(x)
        n = training.check_lengths(inputs)
        was_training = self.training
        self.eval()
        try:
            outputs = [to_numpy(self._run(plan, training.batch(inputs, slice(i, i + batch_size)), False)[0][0])
                       for i in range(0, n, batch_size)]
        finally:
            self.train(was_training)
        return np.concatenate(outputs)

    def train(self, mode: bool = True):
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self):
        return self.train(False)

    @property
    def training(self) -> bool:
        return all(layer.training for layer in self.layers)

    # ---- Keras-style workflow (see dlcore.training)
    def fit(self, x, y, **options) -> training.History:
        return training.fit(self, x, y, **options)

    def evaluate(self, x, y, **options) -> dict[str, float]:
        return training.evaluate(self, x, y, **options)

    def predict(self, x, **options):
        return training.predict(self, x, **options)

    def save_weights(self, path):
        """Write parameters, buffers and layer state to an .npz checkpoint (dlcore.checkpoint)."""
        return checkpoint.save(path, self)

    def save(self, path):
        """Write the whole model, architecture and weights, to one .npz file (atomically);
        dlcore.load_model(path) rebuilds it without this code (dlcore.model_file)."""
        from dlcore.model_file import save_model  # model_file builds models: imported here, not at the top

        return save_model(self, path)

    def load_weights(self, path):
        """Load parameters, buffers and layer state from a checkpoint (also one saved with an
        optimizer and training progress); a mismatch raises CheckpointMismatchError naming
        every differing parameter."""
        return checkpoint.load(path, self)

    def summary(self) -> str:
        """One row per node: name, layer type, output shape (per sample; ? where unknown),
        the nodes or inputs it reads, its parameters (frozen and shared calls marked); then
        the totals."""
        table = []
        seen = set()
        for node in self.nodes:
            layer = node.layer
            count = sum(int(p.data.size) for p in layer.parameters().values())
            table.append((self._node_names[id(node)], type(layer).__name__,
                          "?" if node.output.shape is None else batch_shape_text(node.output.shape),
                          f"{count:,}" if id(layer) not in seen else "(shared)",
                          ", ".join(self._tensor_name(t) for t in node.inputs) + ("  frozen" if layer.frozen else "")))
            seen.add(id(layer))
        header = ("node", "type", "output shape", "parameters", "inputs")
        widths = [max(len(row[i]) for row in [header, *table]) + 2 for i in range(4)]
        rows = ["".join(cell.rjust(w) if i == 3 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                + "  " + row[4] for row in [header, *table]]
        params = self.parameters()
        width = sum(widths)
        rows.append("total parameters".ljust(width - 12) + f"{sum(int(p.data.size) for p in params):>12,}")
        rows.append("trainable".ljust(width - 12) + f"{sum(int(p.data.size) for p in params if p.trainable):>12,}")
        return "\n".join(rows)


class Sequential(Model):
    """Layers applied in order: `model(x)` runs forward, `model.backward(dlogits)` runs backward.

    backward returns dL/dx of the model input only if `needs_input_grad` is set; by
    default the first layer skips computing it (the notes' first conv needs none).
    `input_shape` (per sample, e.g. (1, 28, 28)) lets shapes be inferred when the model is
    built (summary) and a wrong input be reported at the model's door.
    Slicing (`model[:5]`) and `up_to(name)` give a new Sequential sharing the layers.
    """

    def __init__(self, layers, name: str | None = None, needs_input_grad: bool = False, input_shape=None):
        layers = list(layers)
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a dlcore Layer")
        x = inputs = Input(input_shape)
        for layer in layers:
            x = layer(x)
        super().__init__(inputs, x, name=name, needs_input_grad=needs_input_grad)
        self.sequence = layers

    def up_to(self, name: str) -> Sequential:
        """A Sequential of the layers from the first up to and including `name`, shared
        with this model: `Sequential(base.up_to("flatten").layers + [Dense(...)])` replaces a head."""
        return Sequential(self.sequence[: self.sequence.index(self.layer(name)) + 1],
                          input_shape=self.inputs[0].shape)

    def __getitem__(self, key):
        """model["name"] and model[i] give a layer; model[i:j] a Sequential sharing those layers."""
        if isinstance(key, str):
            return self.layer(key)
        if isinstance(key, slice):
            return Sequential(self.sequence[key])
        return self.sequence[key]

    def __len__(self):
        return len(self.sequence)


class MultiInput(Model):
    """One branch per input; the branch outputs are flattened, concatenated and fed to a head:

        inputs[i] (N, ...) -> branches[i] -> (N, d_i) -> concatenate -> (N, sum d_i) -> head -> (N, K)

    `model(images, features)` runs forward; `model.backward(dlogits)` returns one input
    gradient per branch (None unless `needs_input_grad`, a bool or one per branch, asks for
    it). Branches and head are Sequentials or lists of layers, kept as `model.branches` and
    `model.head` (Sequentials sharing the layers, e.g. for per-branch optimizer groups).
    Layer names are unique across the whole model: unnamed layers given in lists are named
    together; Sequentials keep their names. The graph is the one Model(inputs, outputs)
    builds from the same calls.
    """

    def __init__(self, branches, head, name: str | None = None, needs_input_grad=False):
        branches = list(branches)
        parts = [list(part.sequence) if isinstance(part, Sequential) else list(part) for part in [*branches, head]]
        if len(parts) < 2:
            raise ValueError("MultiInput needs at least one branch")
        for where, part in zip([*(f"branch {i}" for i in range(len(parts) - 1)), "head"], parts):
            if not part:
                raise ValueError(f"MultiInput: {where} has no layers")
            bad = next((item for item in part if not isinstance(item, Layer)), None)
            if bad is not None:
                raise TypeError(f"MultiInput: {where} holds a {type(bad).__name__}, not a dlcore Layer")
        inputs = [Input(part.inputs[0].shape if isinstance(part, Sequential) else None) for part in branches]
        ends = []
        for x, part in zip(inputs, parts[:-1]):
            for layer in part:
                x = layer(x)
            ends.append(x)
        self.merge = FlattenConcatenate()
        x = self.merge(ends)
        for layer in parts[-1]:
            x = layer(x)
        super().__init__(inputs, x, name=name, needs_input_grad=needs_input_grad)
        self.branches = [part if isinstance(part, Sequential) else Sequential(part) for part in branches]
        self.head = head if isinstance(head, Sequential) else Sequential(parts[-1])

    def _naming_hint(self) -> str:
        return (" (branches and head given as Sequentials keep their layers' names: name the layers "
                "apart, or pass lists of layers)")

    def _check_inputs(self, inputs):
        if len(inputs) != len(self.inputs):
            raise ValueError(f"MultiInput takes {len(self.inputs)} inputs (one per branch), got {len(inputs)}")
        super()._check_inputs(inputs)
