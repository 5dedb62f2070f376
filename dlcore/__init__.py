"""dlcore: a CNN framework with hand-written CUDA kernels, a NumPy fallback and a CUDA emulator."""
from dlcore.backend import available_backends, get_backend, set_backend, use_backend

__version__ = "0.1.0"
