"""CUDA kernel sources, shipped inside the package as dlcore.kernels (no host code here)."""
