"""Launch geometry of the tiled GEMM kernels (kernels/gemm_tiles.cuh), shared by the dense
and convolution launchers: the grid of output tiles, the split of the reduction over
blockIdx.z, and the kernels that add the partial slices in a fixed order.

A GEMM C (rows, cols) = A (rows, depth) @ B (depth, cols) runs as one block of TILE_THREADS
per TILE_ROWS x TILE_COLS tile of C. When the tiles alone are too few to fill a GPU
(a batch-32 dense layer has 16 of them), the reduction is cut into `splits` slices of
`k_chunk`: block z writes its partial tile into slice z of a (splits, ...) buffer, and
sum_splits adds the slices in the order z = 0, 1, ...; no atomics, so every run gives the
same bits. The split count depends on the shapes only, never on the device, so results are
also the same on every GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlcore.ops import launch
from dlcore.ops.launch import ceil_div

# Must match tiles::BM, BN, BK and THREADS in kernels/gemm_tiles.cuh.
TILE_ROWS = 64
TILE_COLS = 128
TILE_DEPTH = 8
TILE_THREADS = 128

TARGET_BLOCKS = 264  # about two resident blocks on each of an H100's 132 SMs
MIN_TILES_PER_SPLIT = 16  # a slice reduces at least 16 * TILE_DEPTH: its partial tile is worth writing
INT32_LIMIT = 2**31  # kernels index with 32-bit ints

ELEMENTWISE_THREADS = 256  # sum_splits and the other one-element-per-thread kernels


@dataclass(frozen=True)
class TilePlan:
    """Grid, block and reduction split of one tiled GEMM launch."""

    grid: tuple[int, int, int]  # (column tiles, row tiles, splits)
    block: tuple[int]
    k_chunk: int  # reduction length per split, a multiple of TILE_DEPTH
    splits: int


def plan_tiles(rows: int, cols: int, depth: int) -> TilePlan:
    """Tiles of a rows x cols output and the split of its length-`depth` reduction: as many
    slices as it takes to reach TARGET_BLOCKS blocks, none shorter than MIN_TILES_PER_SPLIT
    stages, none empty, and a partial buffer (splits * (rows * cols + rows) elements: room
    for a per-row sum) under 2^31 elements."""
    tiles = ceil_div(rows, TILE_ROWS) * ceil_div(cols, TILE_COLS)
    stages = ceil_div(depth, TILE_DEPTH)
    most_slices = (INT32_LIMIT - 1) // (rows * cols + rows)  # the partial buffer stays 32-bit indexable
    wanted = max(1, min(ceil_div(TARGET_BLOCKS, tiles), stages // MIN_TILES_PER_SPLIT, most_slices))
    k_chunk = ceil_div(stages, wanted) * TILE_DEPTH
    splits = ceil_div(depth, k_chunk)
    return TilePlan((ceil_div(cols, TILE_COLS), ceil_div(rows, TILE_ROWS), splits), (TILE_THREADS,), k_chunk, splits)


def require_int32_sizes(op: str, **sizes: int) -> None:
    """Every size (elements of an array the kernels index) is below 2^31."""
    for name, size in sizes.items():
        if size >= INT32_LIMIT:
            raise ValueError(f"{op}: {name} has {size} elements; the CUDA kernels index at most 2^31 - 1")


def partial_buffer(plan: TilePlan, out):
    """`out` itself for one split, else a new (splits, *out.shape) buffer for the partial slices."""
    if plan.splits == 1:
        return out
    return launch.empty((plan.splits,) + tuple(out.shape), out.dtype)


def sum_splits(kernels, partial, out, splits: int) -> None:
    """out = sum over z of partial[z] (partial (splits, *out.shape)), in the order z = 0, 1, ..."""
    kernel = kernels.get("sum_splits", out.dtype)
    kernel((ceil_div(out.size, ELEMENTWISE_THREADS),), (ELEMENTWISE_THREADS,),
           (partial, out, launch.i32(out.size), launch.i32(splits)))  # fmt: skip


def sum_splits_bias_relu(kernels, partial, bias, out, splits: int, channel_stride: int, apply_relu: bool) -> None:
    """out = act(sum over z of partial[z] + bias[channel]), channel = flat index // channel_stride
    % len(bias), act = ReLU when apply_relu."""
    kernel = kernels.get("sum_splits_bias_relu", out.dtype)
    kernel((ceil_div(out.size, ELEMENTWISE_THREADS),), (ELEMENTWISE_THREADS,),
           (partial, bias, out, launch.i32(out.size), launch.i32(splits), launch.i32(channel_stride),
            launch.i32(bias.size), launch.i32(apply_relu)))  # fmt: skip
