"""One training step and one inference pass of the notes' network, for dlcore and for PyTorch.

Both frameworks get the same synthetic MNIST-shaped batch (N, 1, 28, 28) and labels,
the same architecture, Adam at 1e-4 and softmax cross-entropy, so their images/s compare.
"""
from __future__ import annotations

import numpy as np

import dlcore
from dlcore.backend import to_backend
from dlcore.losses import SoftmaxCrossEntropy
from dlcore.optim import Adam
from dlcore.zoo import mnist_cnn


def synthetic_batch(batch_size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.random((batch_size, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, size=batch_size)
    return images, labels


def dlcore_training(batch_size: int):
    """(model, optimizer, loss_fn, x, y) of one dlcore training setup, seeded."""
    dlcore.manual_seed(0)
    model = mnist_cnn().train()
    images, labels = synthetic_batch(batch_size)
    return model, Adam(model.parameters(), lr=1e-4), SoftmaxCrossEntropy(), to_backend(images), to_backend(labels)


def dlcore_train_step(batch_size: int):
    """A zero-argument callable running one forward + backward + Adam step of dlcore."""
    model, optimizer, loss_fn, x, y = dlcore_training(batch_size)

    def step():
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        optimizer.step()
        return loss

    return step


def dlcore_inference(batch_size: int):
    dlcore.manual_seed(0)
    model = mnist_cnn().eval()
    x = to_backend(synthetic_batch(batch_size)[0])
    return lambda: model(x)


def torch_network():
    import torch
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, 10),
    ).to(torch.float32)


def torch_train_step(batch_size: int):
    import torch

    torch.manual_seed(0)
    model = torch_network().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    images, labels = synthetic_batch(batch_size)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def torch_inference(batch_size: int):
    import torch

    torch.manual_seed(0)
    model = torch_network().eval()
    x = torch.from_numpy(synthetic_batch(batch_size)[0])

    def infer():
        with torch.no_grad():
            return model(x)

    return infer


FACTORIES = {
    ("dlcore", "train"): dlcore_train_step,
    ("dlcore", "infer"): dlcore_inference,
    ("torch", "train"): torch_train_step,
    ("torch", "infer"): torch_inference,
}
