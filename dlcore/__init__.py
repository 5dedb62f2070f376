"""dlcore: a CNN framework with hand-written CUDA kernels, a NumPy fallback and a CUDA emulator."""
from dlcore.anomaly import detect_anomaly
from dlcore.backend import available_backends, get_backend, set_backend, use_backend
from dlcore.graph import Input
from dlcore.model_file import load_model
from dlcore.models import Model, MultiInput, Sequential
from dlcore.seeding import manual_seed

__version__ = "0.1.0"

__all__ = [
    "Input", "Model", "MultiInput", "Sequential", "available_backends", "detect_anomaly", "get_backend", "load_model",
    "manual_seed", "set_backend", "use_backend",
]
