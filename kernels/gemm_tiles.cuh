// gemm_tiles.cuh -- the tiled GEMM main loop that gemm.cu and conv.cu share, the loaders of plain
// row-major / transposed operands, and the kernels that finish a split reduction.
//
// A block computes a BM x BN tile of C = A @ B (A: M x Kred, B: Kred x N) over the reduction slice
// [k_begin, k_end). Each step a loader per operand gathers a BK-deep slice of its operand into
// registers (zeros outside the matrix), the block stores it into one of two shared-memory stages
// (A transposed: a_tile[k][m], B as is: b_tile[k][n]) and every thread accumulates its 8 x 8
// outputs from the other stage: the next slice's global loads are in flight while the current one
// is multiplied, and one barrier per step suffices.
//
// Thread t of the 128 owns rows ty*8 + [0, 8) and columns tx*4 + [0, 4) and BN/2 + tx*4 + [0, 4)
// of the tile (ty = t / 16, tx = t % 16): every step reads 8 A and 8 B values as four 16-byte
// shared loads (conflict-free) for 64 FMAs, and a warp's 16 lanes write 64 consecutive columns.
//
// A loader is a struct with
//   kCount                         elements of a slice that each thread loads
//   kPad                           padding of its shared rows (a multiple of 4: float4 reads stay
//                                  aligned), chosen so that its stores hit distinct banks
//   fetch(k0, v)                   the thread's elements of slice [k0, k0 + BK) into registers v
//   store(v, tile)                 v into the shared stage, where tile_product reads them
// Split reductions: block z of gridDim.z reduces one slice of the reduction and writes its partial
// tile; sum_splits / sum_splits_bias_relu add the partials in the order z = 0, 1, ... (no atomics:
// the result is the same on every run and every GPU, given the same split count).
#pragma once

namespace tiles {

constexpr int BM = 64;                        // rows of C per block
constexpr int BN = 128;                       // columns of C per block
constexpr int BK = 8;                         // reduction depth of a shared-memory stage
constexpr int TM = 8;                         // rows of C per thread
constexpr int TN = 8;                         // columns of C per thread (two runs of 4)
constexpr int THREADS = (BM / TM) * (BN / TN);  // 128
constexpr int THREAD_COLUMNS = BN / TN;       // 16: tx = threadIdx.x % 16, ty = threadIdx.x / 16

// Four consecutive elements as 16-byte accesses (p 16-byte aligned): loads from shared memory,
// stores to global memory.
__device__ __forceinline__ void load4(const float* p, float* v) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
}
__device__ __forceinline__ void load4(const double* p, double* v) {
    const double2 q0 = *reinterpret_cast<const double2*>(p), q1 = *reinterpret_cast<const double2*>(p + 2);
    v[0] = q0.x, v[1] = q0.y, v[2] = q1.x, v[3] = q1.y;
}
// (__stwb, the default write-back store: nvcc split a plain float4 assignment into four 4-byte
// stores in conv.cu's epilogue)
__device__ __forceinline__ void store4(float* p, const float* v) {
    __stwb(reinterpret_cast<float4*>(p), make_float4(v[0], v[1], v[2], v[3]));
}
__device__ __forceinline__ void store4(double* p, const double* v) {
    __stwb(reinterpret_cast<double2*>(p), make_double2(v[0], v[1]));
    __stwb(reinterpret_cast<double2*>(p + 2), make_double2(v[2], v[3]));
}

__device__ __forceinline__ bool aligned16(const void* p) {
    return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;
}

// A(m, k) = a[(row0 + m) * lda + k], zero outside M x Kred. Thread t loads k = t % 8 of rows
// t / 8 + 16s (s < 4): eight lanes read one row's 8 consecutive elements.
template <typename T>
struct RowMajorA {
    static constexpr int kCount = BM * BK / THREADS, kPad = 4;
    const T* a;
    int lda, rows, depth, row0;

    __device__ void fetch(int k0, T (&v)[kCount]) const {
        const int k = k0 + threadIdx.x % BK, m = threadIdx.x / BK;
#pragma unroll
        for (int s = 0; s < kCount; s++) {
            const int row = row0 + m + s * (THREADS / BK);
            v[s] = row < rows && k < depth ? a[row * lda + k] : T(0);
        }
    }
    __device__ void store(const T (&v)[kCount], T (&tile)[BK][BM + kPad]) const {
#pragma unroll
        for (int s = 0; s < kCount; s++) tile[threadIdx.x % BK][threadIdx.x / BK + s * (THREADS / BK)] = v[s];
    }
};

// A(m, k) = a[k * lda + row0 + m] (A is the transpose of a row-major array). Thread t loads row
// t % 64 of k = t / 64 + 2s (s < 4): a warp reads 32 consecutive elements.
template <typename T>
struct TransposedA {
    static constexpr int kCount = BM * BK / THREADS, kPad = 4;
    const T* a;
    int lda, rows, depth, row0;

    __device__ void fetch(int k0, T (&v)[kCount]) const {
        const int row = row0 + threadIdx.x % BM;
#pragma unroll
        for (int s = 0; s < kCount; s++) {
            const int k = k0 + threadIdx.x / BM + s * (THREADS / BM);
            v[s] = row < rows && k < depth ? a[k * lda + row] : T(0);
        }
    }
    __device__ void store(const T (&v)[kCount], T (&tile)[BK][BM + kPad]) const {
#pragma unroll
        for (int s = 0; s < kCount; s++) tile[threadIdx.x / BM + s * (THREADS / BM)][threadIdx.x % BM] = v[s];
    }
};

// B(k, n) = b[k * ldb + col0 + n]. Thread t loads column t of every k: a warp reads 32 consecutive
// elements of a row.
template <typename T>
struct RowMajorB {
    static constexpr int kCount = BN * BK / THREADS, kPad = 4;
    const T* b;
    int ldb, depth, cols, col0;

    __device__ void fetch(int k0, T (&v)[kCount]) const {
        const int col = col0 + threadIdx.x;
#pragma unroll
        for (int s = 0; s < kCount; s++) {
            const int k = k0 + s;
            v[s] = k < depth && col < cols ? b[k * ldb + col] : T(0);
        }
    }
    __device__ void store(const T (&v)[kCount], T (&tile)[BK][BN + kPad]) const {
#pragma unroll
        for (int s = 0; s < kCount; s++) tile[s][threadIdx.x] = v[s];
    }
};

// B(k, n) = b[(col0 + n) * ldb + k] (B is the transpose of a row-major array). Thread t loads
// k = t % 8 of columns t / 8 + 16s (s < 8): eight lanes read one row's 8 consecutive elements.
template <typename T>
struct TransposedB {
    static constexpr int kCount = BN * BK / THREADS, kPad = 4;
    const T* b;
    int ldb, depth, cols, col0;

    __device__ void fetch(int k0, T (&v)[kCount]) const {
        const int k = k0 + threadIdx.x % BK, n = threadIdx.x / BK;
#pragma unroll
        for (int s = 0; s < kCount; s++) {
            const int col = col0 + n + s * (THREADS / BK);
            v[s] = k < depth && col < cols ? b[col * ldb + k] : T(0);
        }
    }
    __device__ void store(const T (&v)[kCount], T (&tile)[BK][BN + kPad]) const {
#pragma unroll
        for (int s = 0; s < kCount; s++) tile[threadIdx.x % BK][threadIdx.x / BK + s * (THREADS / BK)] = v[s];
    }
};

// acc += A[:, k_begin:k_end] @ B[k_begin:k_end, :] for this thread's 8 x 8 outputs (see the top of
// the file); k_begin is a multiple of BK. With kRowSums and sum_rows, thread t < BM also adds the A
// values of tile row t over the slice to row_sum.
template <bool kRowSums, typename T, class LoadA, class LoadB>
__device__ __forceinline__ void tile_product_impl(const LoadA& load_a, const LoadB& load_b, int k_begin, int k_end,
                                                  T (&acc)[TM][TN], T& row_sum, bool sum_rows) {
    __shared__ __align__(16) T a_tile[2][BK][BM + LoadA::kPad];  // a_tile[stage][k][m] = A(row0 + m, k0 + k)
    __shared__ __align__(16) T b_tile[2][BK][BN + LoadB::kPad];  // b_tile[stage][k][n] = B(k0 + k, col0 + n)
    const int ty = threadIdx.x / THREAD_COLUMNS, tx = threadIdx.x % THREAD_COLUMNS;
    T a_next[LoadA::kCount], b_next[LoadB::kCount];
    load_a.fetch(k_begin, a_next);
    load_b.fetch(k_begin, b_next);
    load_a.store(a_next, a_tile[0]);
    load_b.store(b_next, b_tile[0]);
    __syncthreads();
    int stage = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
        const bool has_next = k0 + BK < k_end;
        if (has_next) {  // in flight while this stage is multiplied
            load_a.fetch(k0 + BK, a_next);
            load_b.fetch(k0 + BK, b_next);
        }
#pragma unroll
        for (int k = 0; k < BK; k++) {
            T a[TM], b[TN];
            load4(&a_tile[stage][k][ty * TM], a);
            load4(&a_tile[stage][k][ty * TM + 4], a + 4);
            load4(&b_tile[stage][k][tx * 4], b);
            load4(&b_tile[stage][k][BN / 2 + tx * 4], b + 4);
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) acc[i][j] += a[i] * b[j];
        }
        if (kRowSums && sum_rows && threadIdx.x < BM) {
#pragma unroll
            for (int k = 0; k < BK; k++) row_sum += a_tile[stage][k][threadIdx.x];
        }
        if (has_next) {  // the other stage was last read before the previous barrier
            load_a.store(a_next, a_tile[stage ^ 1]);
            load_b.store(b_next, b_tile[stage ^ 1]);
        }
        __syncthreads();
        stage ^= 1;
    }
}

template <typename T, class LoadA, class LoadB>
__device__ __forceinline__ void tile_product(const LoadA& load_a, const LoadB& load_b, int k_begin, int k_end,
                                             T (&acc)[TM][TN]) {
    T no_row_sum = T(0);
    tile_product_impl<false>(load_a, load_b, k_begin, k_end, acc, no_row_sum, false);
}

// tile_product, and where sum_rows, row_sum += the sum of A's tile row threadIdx.x (< BM) over the slice.
template <typename T, class LoadA, class LoadB>
__device__ __forceinline__ void tile_product_with_row_sums(const LoadA& load_a, const LoadB& load_b, int k_begin,
                                                           int k_end, T (&acc)[TM][TN], T& row_sum, bool sum_rows) {
    tile_product_impl<true>(load_a, load_b, k_begin, k_end, acc, row_sum, sum_rows);
}

// The slice [begin, end) of a reduction of length `depth` that block blockIdx.z takes when each
// block takes `chunk`.
struct Slice {
    int begin, end;
};
__device__ __forceinline__ Slice reduction_slice(int chunk, int depth) {
    const int begin = blockIdx.z * chunk;
    return {begin, min(depth, begin + chunk)};
}

// The first row and column of this thread's outputs: rows row + [0, 8), columns col + [0, 4) and
// col + BN/2 + [0, 4).
__device__ __forceinline__ int thread_row0() { return blockIdx.y * BM + threadIdx.x / THREAD_COLUMNS * TM; }
__device__ __forceinline__ int thread_col0() { return blockIdx.x * BN + threadIdx.x % THREAD_COLUMNS * 4; }

// Stores v[0..4) at columns col + [0, 4) of row `row` of a row-major rows x cols array c: one 16-byte
// store when `vector` (cols % 4 == 0 and c 16-byte aligned), else the columns inside the array.
template <typename T>
__device__ __forceinline__ void store_row4(T* c, int rows, int cols, bool vector, int row, int col, const T* v) {
    if (row >= rows) return;
    if (vector) {
        if (col < cols) store4(c + row * cols + col, v);
        return;
    }
#pragma unroll
    for (int j = 0; j < 4; j++)
        if (col + j < cols) c[row * cols + col + j] = v[j];
}

}  // namespace tiles

// out[e] = sum over z < splits of partial[z * size + e], in the order z = 0, 1, ...
template <typename T>
__global__ void sum_splits(const T* __restrict__ partial,  // (splits, size)
                           T* __restrict__ out,            // (size,)
                           int size, int splits) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= size) return;
    T total = partial[e];
    for (int z = 1; z < splits; z++) total += partial[(long long)z * size + e];
    out[e] = total;
}

// out[e] = act(sum over z of partial[z * size + e] + bias[e / channel_stride % channels]),
// act = ReLU when apply_relu, else the identity; the sum in the order z = 0, 1, ...
template <typename T>
__global__ void sum_splits_bias_relu(const T* __restrict__ partial,  // (splits, size)
                                     const T* __restrict__ bias,     // (channels,)
                                     T* __restrict__ out,            // (size,)
                                     int size, int splits, int channel_stride, int channels, int apply_relu) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= size) return;
    T total = partial[e];
    for (int z = 1; z < splits; z++) total += partial[(long long)z * size + e];
    total += bias[e / channel_stride % channels];
    out[e] = apply_relu && total < T(0) ? T(0) : total;
}
