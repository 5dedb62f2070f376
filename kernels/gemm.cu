// gemm.cu -- tiled GEMM for the dense layer: out = act(x @ w + b), dx = dout @ w^T, dw = x^T @ dout,
// db = column sums of dout, and the ReLU mask dout * (out > 0).
//
// Every matrix is row-major: x (N, in), w (in, out), out and dout (N, out). A GEMM kernel computes
// C (M, Ncols) = A @ B with A and B read through the loaders of gemm_tiles.cuh, which give the
// transposes without copying. Grid (ceil(Ncols / 128), ceil(M / 64), splits), tiles::THREADS threads;
// block z reduces [z * k_chunk, (z + 1) * k_chunk) of the reduction (k_chunk a multiple of 8). With
// one split the kernel writes C; with S splits it writes slice z of a (S, M, Ncols) partial buffer
// and sum_splits / sum_splits_bias_relu add the slices in a fixed order (no atomics).
//
// gemm_nn_bias_relu     v1: C = act(A @ B + bias[col]), tiled 64 x 128, 8 x 8 outputs per thread,
//                           double-buffered shared stages, 16-byte shared loads and global stores
// gemm_nt               v1: C = A @ B^T (b holds B^T row-major), same tiles, no epilogue
// gemm_tn               v1: C = A^T @ B (a holds A^T row-major), same tiles, no epilogue
// relu_mask             v1: masked = dout * (out > 0), one element per thread
// column_sums           v1: sums[col] = sum over rows of a[row, col], one thread per column, rows in order
// sum_splits, sum_splits_bias_relu (gemm_tiles.cuh) add the partial slices
//
// Indices are 32-bit: the launcher requires every array (and partial buffer) under 2^31 elements.
#include "gemm_tiles.cuh"

namespace gemm_detail {

using namespace tiles;

// Writes this thread's outputs into the rows x cols row-major c, adding bias[col] when bias is
// given and applying ReLU when apply_relu.
template <typename T>
__device__ __forceinline__ void store_tile(T* c, const T (&acc)[TM][TN], int rows, int cols, const T* bias,
                                           bool apply_relu) {
    const bool vector = cols % 4 == 0 && aligned16(c);
    const int row0 = thread_row0(), col0 = thread_col0();
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int col = col0 + half * (BN / 2);
        T b[4];
#pragma unroll
        for (int j = 0; j < 4; j++) b[j] = bias != nullptr && col + j < cols ? bias[col + j] : T(0);
#pragma unroll
        for (int i = 0; i < TM; i++) {
            T v[4];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                v[j] = acc[i][half * 4 + j] + b[j];
                if (apply_relu && v[j] < T(0)) v[j] = T(0);
            }
            store_row4(c, rows, cols, vector, row0 + i, col, v);
        }
    }
}

}  // namespace gemm_detail

// c = act(a @ b + bias) with one split; slice z of c (splits, M, N) = block z's partial a @ b.
template <typename T>
__global__ void __launch_bounds__(tiles::THREADS)
    gemm_nn_bias_relu(const T* __restrict__ a,     // (M, K)
                      const T* __restrict__ b,     // (K, N)
                      const T* __restrict__ bias,  // (N,)
                      T* __restrict__ c,           // (M, N), or (splits, M, N) partial
                      int rows, int cols, int depth, int k_chunk, int apply_relu) {
    using namespace gemm_detail;
    const RowMajorA<T> load_a{a, depth, rows, depth, (int)blockIdx.y * BM};
    const RowMajorB<T> load_b{b, cols, depth, cols, (int)blockIdx.x * BN};
    T acc[TM][TN] = {};
    const Slice slice = reduction_slice(k_chunk, depth);
    tile_product(load_a, load_b, slice.begin, slice.end, acc);
    const bool finish = gridDim.z == 1;
    store_tile(c + (long long)blockIdx.z * rows * cols, acc, rows, cols, finish ? bias : nullptr, finish && apply_relu);
}

// c = a @ b^T; b is (N, K) row-major.
template <typename T>
__global__ void __launch_bounds__(tiles::THREADS)
    gemm_nt(const T* __restrict__ a,  // (M, K)
            const T* __restrict__ b,  // (N, K)
            T* __restrict__ c,        // (M, N), or (splits, M, N) partial
            int rows, int cols, int depth, int k_chunk) {
    using namespace gemm_detail;
    const RowMajorA<T> load_a{a, depth, rows, depth, (int)blockIdx.y * BM};
    const TransposedB<T> load_b{b, depth, depth, cols, (int)blockIdx.x * BN};
    T acc[TM][TN] = {};
    const Slice slice = reduction_slice(k_chunk, depth);
    tile_product(load_a, load_b, slice.begin, slice.end, acc);
    store_tile(c + (long long)blockIdx.z * rows * cols, acc, rows, cols, (const T*)nullptr, false);
}

// c = a^T @ b; a is (K, M) row-major.
template <typename T>
__global__ void __launch_bounds__(tiles::THREADS)
    gemm_tn(const T* __restrict__ a,  // (K, M)
            const T* __restrict__ b,  // (K, N)
            T* __restrict__ c,        // (M, N), or (splits, M, N) partial
            int rows, int cols, int depth, int k_chunk) {
    using namespace gemm_detail;
    const TransposedA<T> load_a{a, rows, rows, depth, (int)blockIdx.y * BM};
    const RowMajorB<T> load_b{b, cols, depth, cols, (int)blockIdx.x * BN};
    T acc[TM][TN] = {};
    const Slice slice = reduction_slice(k_chunk, depth);
    tile_product(load_a, load_b, slice.begin, slice.end, acc);
    store_tile(c + (long long)blockIdx.z * rows * cols, acc, rows, cols, (const T*)nullptr, false);
}

// masked[e] = dout[e] * (out[e] > 0)
template <typename T>
__global__ void relu_mask(const T* __restrict__ dout, const T* __restrict__ out, T* __restrict__ masked, int size) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e < size) masked[e] = dout[e] * T(out[e] > T(0));
}

// sums[col] = sum over row of a[row, col], rows added in order (a warp reads 32 adjacent columns).
template <typename T>
__global__ void column_sums(const T* __restrict__ a,  // (rows, cols)
                            T* __restrict__ sums,     // (cols,)
                            int rows, int cols) {
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= cols) return;
    T total = T(0);
    for (int row = 0; row < rows; row++) total += a[row * cols + col];
    sums[col] = total;
}

// Explicit instantiations, so that `nvcc --cubin` compiles (and reports registers for) every kernel.
#define GEMM_INSTANTIATE(T)                                                                             \
    template __global__ void gemm_nn_bias_relu<T>(const T*, const T*, const T*, T*, int, int, int, int, int); \
    template __global__ void gemm_nt<T>(const T*, const T*, T*, int, int, int, int);                    \
    template __global__ void gemm_tn<T>(const T*, const T*, T*, int, int, int, int);                    \
    template __global__ void relu_mask<T>(const T*, const T*, T*, int);                                 \
    template __global__ void column_sums<T>(const T*, T*, int, int);                                    \
    template __global__ void sum_splits<T>(const T*, T*, int, int);                                     \
    template __global__ void sum_splits_bias_relu<T>(const T*, const T*, T*, int, int, int, int, int);
GEMM_INSTANTIATE(float)
GEMM_INSTANTIATE(double)
