"""Data loading: IDX files, MNIST / Fashion-MNIST, CIFAR-10 / CIFAR-100, image folders,
validation split, mini-batching, augmentation."""
from dlcore.data.augment import (
    Compose,
    GaussianNoise,
    RandomFlip,
    RandomRotation,
    RandomScale,
    RandomTranslation,
    SaltPepperNoise,
)
from dlcore.data.augment_color import ColorJitter, Normalize
from dlcore.data.augment_crops import Cutout, RandomCrop, RandomResizedCrop
from dlcore.data.batching import BatchSampler, iterate_minibatches
from dlcore.data.cifar import load_cifar
from dlcore.data.errors import DataFileError, DatasetNotFoundError
from dlcore.data.idx import read_idx
from dlcore.data.image_folder import ImageFiles, ImageFolder, load_image_folder
from dlcore.data.mnist import load_mnist
from dlcore.data.splits import train_validation_split

__all__ = [
    "BatchSampler",
    "ColorJitter",
    "Compose",
    "Cutout",
    "DataFileError",
    "DatasetNotFoundError",
    "GaussianNoise",
    "ImageFiles",
    "ImageFolder",
    "Normalize",
    "RandomCrop",
    "RandomFlip",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomScale",
    "RandomTranslation",
    "SaltPepperNoise",
    "iterate_minibatches",
    "load_cifar",
    "load_image_folder",
    "load_mnist",
    "read_idx",
    "train_validation_split",
]
