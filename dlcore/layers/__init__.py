"""Layers: each owns its parameters and pairs forward with backward."""
from dlcore.layers.activation import Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from dlcore.layers.base import Layer
from dlcore.layers.conv import Conv2D
from dlcore.layers.dense import Dense
from dlcore.layers.dropout import Dropout, set_dropout
from dlcore.layers.global_pool import GlobalAvgPool2D, GlobalMaxPool2D
from dlcore.layers.merge import Add, Concatenate
from dlcore.layers.norm import BatchNorm1D, BatchNorm2D
from dlcore.layers.pool import AvgPool2D, MaxPool2D
from dlcore.layers.reshape import Flatten

__all__ = [
    "Add", "AvgPool2D", "BatchNorm1D", "BatchNorm2D", "Concatenate", "Conv2D", "Dense", "Dropout", "Flatten",
    "GlobalAvgPool2D", "GlobalMaxPool2D", "Identity", "Layer", "LeakyReLU", "MaxPool2D", "ReLU", "Sigmoid", "Tanh",
    "set_dropout",
]
