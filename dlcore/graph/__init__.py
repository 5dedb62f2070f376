"""The graph engine: every model is a directed acyclic graph of layer calls (nodes).

    tensor.py    symbolic tensors (Input) and nodes, made by calling layers on them
    topology.py  topological order, validation and names of a graph's nodes
    engine.py    execution: a plan of steps, forward in order, backward in reverse
    fusion.py    graph passes that rewrite a plan (the ReLU gradient through max pooling)
"""
from dlcore.graph.tensor import Input, Node, SymbolicTensor

__all__ = ["Input", "Node", "SymbolicTensor"]
