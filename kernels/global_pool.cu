// global_pool.cu -- global average and max pooling over NCHW arrays, forward and backward.
//
//   avg: out[n, c] = sum_{h, w} x[n, c, h, w] / (H*W)      dx[n, c, h, w] = dout[n, c] / (H*W)
//   max: out[n, c] = max_{h, w} x[n, c, h, w]              dx[n, c, h, w] = dout[n, c] at the argmax, else 0
// x (N, C, H, W) is read as `planes` = N*C rows of `cells` = H*W; out, dout and argmax are (N, C).
// Tie rule: the argmax (h*W + w within the plane, int32) is the first maximal cell in row-major
// order, and a NaN beats every number (the first NaN wins), as numpy.argmax: the gradient goes to
// the cell whose value out holds.
//
// global_avg_pool2d_forward   v1: a warp per plane (grid-stride over planes); lane l sums cells
//                                 l, l + 32, ... in order, then warp_sum's fixed butterfly
// global_max_pool2d_forward   v1: a warp per plane; each lane keeps its first maximum, then a
//                                 butterfly over (value, index) pairs keeps the better pair
// global_avg_pool2d_backward  v1: grid-stride loop over the input cells
// global_max_pool2d_backward  v1: grid-stride loop over the input cells, dout at the plane's argmax
// Every reduction has a fixed order (no atomics): the same bits on every run. Element indices are
// 32-bit (the launcher requires x under 2^31 elements).
#include "common.cuh"

namespace global_pool_detail {

// Whether `value` at `index` beats `best` at `best_index`: a NaN beats a number, then the larger
// value, then on equal values (or two NaNs) the smaller index. A strict total order on distinct
// indices, so every lane of a butterfly ends with the same pair.
template <typename T>
__device__ __forceinline__ bool beats(T value, int index, T best, int best_index) {
    const bool value_nan = value != value, best_nan = best != best;
    if (value_nan != best_nan) return value_nan;
    if (value_nan || value == best) return index < best_index;
    return value > best;
}

}  // namespace global_pool_detail

template <typename T>
__global__ void global_avg_pool2d_forward(const T* __restrict__ x,  // (planes, cells)
                                          T* __restrict__ out,      // (planes,)
                                          int planes, int cells) {
    const int lane = threadIdx.x % warpSize, warps_per_block = blockDim.x / warpSize;
    for (int plane = blockIdx.x * warps_per_block + threadIdx.x / warpSize; plane < planes;
         plane += gridDim.x * warps_per_block) {
        const T* x_plane = x + (long long)plane * cells;
        T sum = T(0);
        for (int i = lane; i < cells; i += warpSize) sum += x_plane[i];
        sum = warp_sum(sum);
        if (lane == 0) out[plane] = sum / T(cells);
    }
}

template <typename T>
__global__ void global_max_pool2d_forward(const T* __restrict__ x,     // (planes, cells)
                                          T* __restrict__ out,         // (planes,)
                                          int* __restrict__ argmax,    // (planes,): h*W + w of the maximum
                                          int planes, int cells) {
    using global_pool_detail::beats;
    const int lane = threadIdx.x % warpSize, warps_per_block = blockDim.x / warpSize;
    for (int plane = blockIdx.x * warps_per_block + threadIdx.x / warpSize; plane < planes;
         plane += gridDim.x * warps_per_block) {
        const T* x_plane = x + (long long)plane * cells;
        // Start from (cell 0's value, index `cells`): it loses to cell 0 itself, which lane 0 scans,
        // so a lane without cells (cells < 32) never decides the result.
        T best = x_plane[0];
        int best_index = cells;
        for (int i = lane; i < cells; i += warpSize) {
            const T value = x_plane[i];
            if (beats(value, i, best, best_index)) {
                best = value;
                best_index = i;
            }
        }
#pragma unroll
        for (int lane_mask = 16; lane_mask > 0; lane_mask >>= 1) {
            const T other = __shfl_xor_sync(FULL_WARP_MASK, best, lane_mask);
            const int other_index = __shfl_xor_sync(FULL_WARP_MASK, best_index, lane_mask);
            if (beats(other, other_index, best, best_index)) {
                best = other;
                best_index = other_index;
            }
        }
        if (lane == 0) {
            out[plane] = best;
            argmax[plane] = best_index;
        }
    }
}

template <typename T>
__global__ void global_avg_pool2d_backward(const T* __restrict__ dout,  // (planes,)
                                           T* __restrict__ dx,          // (planes, cells)
                                           int total, int cells) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned int)total; i += blockDim.x * gridDim.x)
        dx[i] = dout[i / cells] / T(cells);
}

template <typename T>
__global__ void global_max_pool2d_backward(const T* __restrict__ dout,     // (planes,)
                                           const int* __restrict__ argmax, // (planes,)
                                           T* __restrict__ dx,             // (planes, cells)
                                           int total, int cells) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned int)total; i += blockDim.x * gridDim.x) {
        const unsigned int plane = i / cells;
        dx[i] = (int)(i - plane * cells) == argmax[plane] ? dout[plane] : T(0);
    }
}

// Explicit instantiations, so that `nvcc --cubin` compiles (and reports registers for) every kernel.
#define GLOBAL_POOL_INSTANTIATE(T)                                                              \
    template __global__ void global_avg_pool2d_forward<T>(const T*, T*, int, int);              \
    template __global__ void global_max_pool2d_forward<T>(const T*, T*, int*, int, int);        \
    template __global__ void global_avg_pool2d_backward<T>(const T*, T*, int, int);             \
    template __global__ void global_max_pool2d_backward<T>(const T*, const int*, T*, int, int);
GLOBAL_POOL_INSTANTIATE(float)
GLOBAL_POOL_INSTANTIATE(double)
