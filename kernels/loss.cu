// loss.cu -- softmax cross-entropy over the rows of (N, K) logits: row losses, the gradient,
// and their batch mean.
//
//   m = max_k z_k,  s = sum_k exp(z_k - m),  log p_k = (z_k - m) - log s
//   row_loss = -sum_k t_k log p_k              (t: one-hot of an integer label, or a target row)
//   dlogits  = (exp(log p_k) - t_k) / N
//   loss     = sum_n row_loss_n / N
// Layouts: logits, targets, dlogits (N, K) row-major; labels (N,) int32 in [0, K) (checked on
// the host); row_loss (N,); loss a single element.
//
//   softmax_cross_entropy_labels   v1 one warp per row: each lane keeps an online (max, sum) over
//                                     its strided columns, the warp merges them with shuffles, then
//                                     writes the gradient and reduces the row loss; 4 rows a block
//   softmax_cross_entropy_targets  v1 the same with a (N, K) row of targets
//   batch_mean                     v1 one block: each thread sums a strided slice, then a fixed
//                                     tree over the block, so the mean is the same on every run
//   softmax_rows                   v1 p_k = exp(log p_k) alone, one warp per row as above

#include "common.cuh"

namespace loss_detail {

template <typename T>
__device__ __forceinline__ T negative_infinity();
template <>
__device__ __forceinline__ float negative_infinity<float>() {
    return __int_as_float((int)0xff800000u);
}
template <>
__device__ __forceinline__ double negative_infinity<double>() {
    return __longlong_as_double((long long)0xfff0000000000000ull);
}

// exp(from - to) for to >= from; 1 when they are equal, so that two lanes that saw no column
// (max -inf, sum 0) merge into (-inf, 0) instead of NaN.
template <typename T>
__device__ __forceinline__ T rescale(T from, T to) {
    return from == to ? T(1) : exp(from - to);
}

// Max m and s = sum_k exp(z_k - m) of one row, in every lane of the warp. Each lane runs the
// online update over columns lane, lane + 32, ...; lanes then merge (m1, s1), (m2, s2) into
// (max, s1 exp(m1 - max) + s2 exp(m2 - max)).
template <typename T>
__device__ __forceinline__ void row_max_and_sum(const T* __restrict__ row, int classes, int lane, T& max_out, T& sum_out) {
    T row_max = negative_infinity<T>(), row_sum = T(0);
    for (int k = lane; k < classes; k += 32) {
        const T z = row[k];
        if (z > row_max) {
            row_sum = row_sum * rescale(row_max, z) + T(1);
            row_max = z;
        } else {
            row_sum += exp(z - row_max);
        }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        const T other_max = __shfl_xor_sync(FULL_WARP_MASK, row_max, offset);
        const T other_sum = __shfl_xor_sync(FULL_WARP_MASK, row_sum, offset);
        const T merged = other_max > row_max ? other_max : row_max;
        row_sum = row_sum * rescale(row_max, merged) + other_sum * rescale(other_max, merged);
        row_max = merged;
    }
    max_out = row_max;
    sum_out = row_sum;
}

}  // namespace loss_detail

constexpr int ROWS_PER_BLOCK = 4;  // warps per block, one row each

template <typename T>
__global__ void softmax_cross_entropy_labels(const T* __restrict__ logits,  // (N, K)
                                             const int* __restrict__ labels,  // (N,)
                                             T* __restrict__ row_loss,        // (N,)
                                             T* __restrict__ dlogits,         // (N, K)
                                             int batch, int classes) {
    const int lane = threadIdx.x % 32, row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    if (row >= batch) return;  // the whole warp leaves together
    const T* z = logits + (long long)row * classes;
    T* grad = dlogits + (long long)row * classes;
    T row_max, row_sum;
    loss_detail::row_max_and_sum(z, classes, lane, row_max, row_sum);
    const T log_sum = log(row_sum), count = T(batch);
    const int label = labels[row];
    T loss = T(0);
    for (int k = lane; k < classes; k += 32) {
        const T log_p = (z[k] - row_max) - log_sum;
        if (k == label) {
            loss = -log_p;
            grad[k] = (exp(log_p) - T(1)) / count;
        } else {
            grad[k] = exp(log_p) / count;
        }
    }
    loss = warp_sum(loss);
    if (lane == 0) row_loss[row] = loss;
}

template <typename T>
__global__ void softmax_cross_entropy_targets(const T* __restrict__ logits,   // (N, K)
                                              const T* __restrict__ targets,  // (N, K)
                                              T* __restrict__ row_loss,       // (N,)
                                              T* __restrict__ dlogits,        // (N, K)
                                              int batch, int classes) {
    const int lane = threadIdx.x % 32, row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    if (row >= batch) return;  // the whole warp leaves together
    const T* z = logits + (long long)row * classes;
    const T* target = targets + (long long)row * classes;
    T* grad = dlogits + (long long)row * classes;
    T row_max, row_sum;
    loss_detail::row_max_and_sum(z, classes, lane, row_max, row_sum);
    const T log_sum = log(row_sum), count = T(batch);
    T loss = T(0);
    for (int k = lane; k < classes; k += 32) {
        const T log_p = (z[k] - row_max) - log_sum;
        loss -= target[k] * log_p;
        grad[k] = (exp(log_p) - target[k]) / count;
    }
    loss = warp_sum(loss);
    if (lane == 0) row_loss[row] = loss;
}

template <typename T>
__global__ void batch_mean(const T* __restrict__ values,  // (n,)
                           T* __restrict__ mean,          // one element
                           int n) {
    __shared__ T scratch[32];  // block_sum's warp sums
    T sum = T(0);
    for (int i = threadIdx.x; i < n; i += blockDim.x) sum += values[i];
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) *mean = sum / T(n);
}

template <typename T>
__global__ void softmax_rows(const T* __restrict__ logits,   // (N, K)
                             T* __restrict__ probabilities,  // (N, K)
                             int batch, int classes) {
    const int lane = threadIdx.x % 32, row = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    if (row >= batch) return;  // the whole warp leaves together
    const T* z = logits + (long long)row * classes;
    T* p = probabilities + (long long)row * classes;
    T row_max, row_sum;
    loss_detail::row_max_and_sum(z, classes, lane, row_max, row_sum);
    const T log_sum = log(row_sum);
    for (int k = lane; k < classes; k += 32) p[k] = exp((z[k] - row_max) - log_sum);
}

// Explicit instantiations, so that `nvcc --cubin` compiles (and reports registers for) every kernel.
#define LOSS_INSTANTIATE(T)                                                                              \
    template __global__ void softmax_cross_entropy_labels<T>(const T*, const int*, T*, T*, int, int);    \
    template __global__ void softmax_cross_entropy_targets<T>(const T*, const T*, T*, T*, int, int);     \
    template __global__ void batch_mean<T>(const T*, T*, int);                                           \
    template __global__ void softmax_rows<T>(const T*, T*, int, int);
LOSS_INSTANTIATE(float)
LOSS_INSTANTIATE(double)
