"""Tests of dlcore.data: IDX parsing, MNIST loading and download, batching."""
