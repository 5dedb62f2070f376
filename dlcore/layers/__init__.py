"""Layers: each owns its parameters and pairs forward with backward."""
from dlcore.layers.activation import ReLU, Sigmoid, Tanh
from dlcore.layers.base import Layer
from dlcore.layers.conv import Conv2D
from dlcore.layers.dense import Dense
from dlcore.layers.dropout import Dropout, set_dropout
from dlcore.layers.merge import Concatenate
from dlcore.layers.norm import BatchNorm1D, BatchNorm2D
from dlcore.layers.pool import AvgPool2D, MaxPool2D
from dlcore.layers.reshape import Flatten

__all__ = [
    "AvgPool2D", "BatchNorm1D", "BatchNorm2D", "Concatenate", "Conv2D", "Dense", "Dropout", "Flatten",
    "Layer", "MaxPool2D", "ReLU", "Sigmoid", "Tanh", "set_dropout",
]
