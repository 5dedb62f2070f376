// norm.cu -- batch normalization, per channel over the batch and spatial axes.
//
// Layout: x viewed as (N, C, S), S = H*W for (N, C, H, W) input and S = 1 for (N, F) input.
// Channel c holds count = N*S values, numbered k = n*S + s, at x[(n*C + c)*S + s]; the
// reductions cut them into chunks of chunk_len consecutive k (the last chunk may be shorter).
// Per-chunk partial results are (chunks, C) arrays; one warp per channel combines them, in a
// fixed order, so every reduction is deterministic (no atomics). Plane kernels run 256-thread
// blocks (block_sum needs a multiple of 32).
//
// Training statistics of x - shift, shift = the channel's first value x[0, c, 0] (so float32 rounding
// scales with the spread of the values, not with |mean|): Welford within a thread, then exact
// pooled-variance sums across threads and chunks (no E[x^2] - E[x]^2 cancellation):
//   batch_norm_plane_partial_stats    v1, S > 1: one block per (chunk, channel); each thread runs Welford
//                                     over a strided share of the chunk, block sums pool them
//   batch_norm_feature_partial_stats  v1, S = 1: one thread per (chunk, feature) runs Welford down its rows
//                                     (neighbouring threads read neighbouring features: coalesced)
//   batch_norm_finalize_stats         v1: one warp per channel pools the chunks into the mean and
//                                     1/sqrt(var + eps), and updates the running statistics in place
// Inference:
//   batch_norm_inverse_std            v1: 1/sqrt(running_var + eps), one thread per channel
// Both:
//   batch_norm_normalize              v1: elementwise xhat = (x - mean) * inv_std, out = gamma*xhat + beta
// Backward, the two reductions (sum dout, sum dout*xhat) in one pass over the data, then dx:
//   batch_norm_plane_partial_grads    v1, S > 1: one block per (chunk, channel), block sums
//   batch_norm_feature_partial_grads  v1, S = 1: one thread per (chunk, feature)
//   batch_norm_finalize_grads         v1: one warp per channel sums the chunks: dbeta, dgamma
//   batch_norm_backward_dx            v1: elementwise dx from dout, xhat and the two sums
#include "common.cuh"

// Welford's update of a running (n, mean, m2 = sum of squared deviations from the mean).
template <class T>
__device__ __forceinline__ void welford_add(T value, T& n, T& mean, T& m2) {
    n += T(1);
    const T delta = value - mean;
    mean += delta / n;
    m2 += delta * (value - mean);
}

// Offset in x (N, C, S) of value k = n*S + s of `channel`; k = 0 is the channel's shift.
__device__ __forceinline__ int channel_value_offset(int k, int channel, int channels, int plane_size) {
    const int image = k / plane_size;
    return (image * channels + channel) * plane_size + (k - image * plane_size);
}

// Number of values in chunk `chunk` of a channel's `count`.
__device__ __forceinline__ int chunk_size(int chunk, int chunk_len, int count) {
    return min(chunk_len, count - chunk * chunk_len);
}

// Channel of the calling warp in the finalize kernels (one warp per channel).
__device__ __forceinline__ int warp_channel() {
    return blockIdx.x * (blockDim.x / warpSize) + threadIdx.x / warpSize;
}

// ---------------------------------------------------------------- training statistics

template <class T>
__global__ void __launch_bounds__(256) batch_norm_plane_partial_stats(
    const T* __restrict__ x,           // (N, C, S)
    T* __restrict__ partial_mean,      // (chunks, C): chunk mean of x - shift
    T* __restrict__ partial_m2,        // (chunks, C): sum of squared deviations from the chunk mean
    int channels, int plane_size, int count, int chunk_len) {
    __shared__ T scratch[32];
    const int chunk = blockIdx.x, channel = blockIdx.y;
    const int begin = chunk * chunk_len, end = begin + chunk_size(chunk, chunk_len, count);
    const T shift = x[channel_value_offset(0, channel, channels, plane_size)];
    T n = T(0), mean = T(0), m2 = T(0);
    for (int k = begin + threadIdx.x; k < end; k += blockDim.x) {
        welford_add(x[channel_value_offset(k, channel, channels, plane_size)] - shift, n, mean, m2);
    }
    // pool the threads' parts: mean = sum(n_t*mean_t) / n, m2 = sum(m2_t + n_t*(mean_t - mean)^2)
    const T chunk_mean = block_sum(n * mean, scratch) / T(end - begin);
    const T deviation = mean - chunk_mean;
    const T chunk_m2 = block_sum(m2 + n * deviation * deviation, scratch);
    if (threadIdx.x == 0) {
        partial_mean[chunk * channels + channel] = chunk_mean;
        partial_m2[chunk * channels + channel] = chunk_m2;
    }
}

template <class T>
__global__ void batch_norm_feature_partial_stats(
    const T* __restrict__ x,           // (N, F)
    T* __restrict__ partial_mean,      // (chunks, F): chunk mean of x - shift
    T* __restrict__ partial_m2,        // (chunks, F)
    int features, int rows, int chunk_len) {
    const int chunk = blockIdx.x, feature = blockIdx.y * blockDim.x + threadIdx.x;
    if (feature >= features) return;
    const int begin = chunk * chunk_len, end = begin + chunk_size(chunk, chunk_len, rows);
    const T shift = x[feature];
    T n = T(0), mean = T(0), m2 = T(0);
    for (int row = begin; row < end; ++row) welford_add(x[row * features + feature] - shift, n, mean, m2);
    partial_mean[chunk * features + feature] = mean;
    partial_m2[chunk * features + feature] = m2;
}

template <class T>
__global__ void batch_norm_finalize_stats(
    const T* __restrict__ x,             // (N, C, S): the shifts
    const T* __restrict__ partial_mean,  // (chunks, C): of x - shift
    const T* __restrict__ partial_m2,    // (chunks, C)
    T* __restrict__ batch_mean,          // (C,)
    T* __restrict__ inv_std,             // (C,): 1/sqrt(biased batch variance + eps)
    T* __restrict__ running_mean,        // (C,), updated in place
    T* __restrict__ running_var,         // (C,), updated in place
    int channels, int plane_size, int count, int chunks, int chunk_len, T keep, T momentum,
    T unbiased_momentum, T eps) {
    const int lane = threadIdx.x % warpSize, channel = warp_channel();
    if (channel >= channels) return;  // whole warps leave
    // pool the chunks: mean = sum(n_j*mean_j) / count, m2 = sum(m2_j + n_j*(mean_j - mean)^2)
    T weighted = T(0);
    for (int j = lane; j < chunks; j += warpSize) {
        weighted += T(chunk_size(j, chunk_len, count)) * partial_mean[j * channels + channel];
    }
    const T shifted_mean = warp_sum(weighted) / T(count);
    T m2 = T(0);
    for (int j = lane; j < chunks; j += warpSize) {
        const T deviation = partial_mean[j * channels + channel] - shifted_mean;
        m2 += partial_m2[j * channels + channel] + T(chunk_size(j, chunk_len, count)) * deviation * deviation;
    }
    const T var = warp_sum(m2) / T(count);  // biased
    if (lane == 0) {
        const T mean = x[channel_value_offset(0, channel, channels, plane_size)] + shifted_mean;
        batch_mean[channel] = mean;
        inv_std[channel] = T(1) / sqrt(var + eps);
        // running = keep*running + momentum*batch; the variance enters unbiased (momentum * n/(n-1))
        running_mean[channel] = running_mean[channel] * keep + momentum * mean;
        running_var[channel] = running_var[channel] * keep + unbiased_momentum * var;
    }
}

// ---------------------------------------------------------------- inference statistics

template <class T>
__global__ void batch_norm_inverse_std(const T* __restrict__ var,  // (C,)
                                       T* __restrict__ inv_std,    // (C,)
                                       int channels, T eps) {
    const int channel = blockIdx.x * blockDim.x + threadIdx.x;
    if (channel < channels) inv_std[channel] = T(1) / sqrt(var[channel] + eps);
}

// ---------------------------------------------------------------- normalization

template <class T>
__global__ void batch_norm_normalize(const T* __restrict__ x,        // (N, C, S)
                                     const T* __restrict__ mean,     // (C,)
                                     const T* __restrict__ inv_std,  // (C,)
                                     const T* __restrict__ gamma,    // (C,)
                                     const T* __restrict__ beta,     // (C,)
                                     T* __restrict__ xhat,           // (N, C, S)
                                     T* __restrict__ out,            // (N, C, S)
                                     int total, int channels, int plane_size) {
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    const int channel = index / plane_size % channels;
    const T normalized = (x[index] - mean[channel]) * inv_std[channel];
    xhat[index] = normalized;
    out[index] = normalized * gamma[channel] + beta[channel];
}

// ---------------------------------------------------------------- backward

template <class T>
__global__ void __launch_bounds__(256) batch_norm_plane_partial_grads(
    const T* __restrict__ dout,             // (N, C, S)
    const T* __restrict__ xhat,             // (N, C, S)
    T* __restrict__ partial_dout_sum,       // (chunks, C)
    T* __restrict__ partial_dout_xhat_sum,  // (chunks, C)
    int channels, int plane_size, int count, int chunk_len) {
    __shared__ T scratch[32];
    const int chunk = blockIdx.x, channel = blockIdx.y;
    const int begin = chunk * chunk_len, end = begin + chunk_size(chunk, chunk_len, count);
    T dout_sum = T(0), dout_xhat_sum = T(0);
    for (int k = begin + threadIdx.x; k < end; k += blockDim.x) {
        const int offset = channel_value_offset(k, channel, channels, plane_size);
        const T grad = dout[offset];
        dout_sum += grad;
        dout_xhat_sum += grad * xhat[offset];
    }
    dout_sum = block_sum(dout_sum, scratch);
    dout_xhat_sum = block_sum(dout_xhat_sum, scratch);
    if (threadIdx.x == 0) {
        partial_dout_sum[chunk * channels + channel] = dout_sum;
        partial_dout_xhat_sum[chunk * channels + channel] = dout_xhat_sum;
    }
}

template <class T>
__global__ void batch_norm_feature_partial_grads(
    const T* __restrict__ dout,             // (N, F)
    const T* __restrict__ xhat,             // (N, F)
    T* __restrict__ partial_dout_sum,       // (chunks, F)
    T* __restrict__ partial_dout_xhat_sum,  // (chunks, F)
    int features, int rows, int chunk_len) {
    const int chunk = blockIdx.x, feature = blockIdx.y * blockDim.x + threadIdx.x;
    if (feature >= features) return;
    const int begin = chunk * chunk_len, end = begin + chunk_size(chunk, chunk_len, rows);
    T dout_sum = T(0), dout_xhat_sum = T(0);
    for (int row = begin; row < end; ++row) {
        const T grad = dout[row * features + feature];
        dout_sum += grad;
        dout_xhat_sum += grad * xhat[row * features + feature];
    }
    partial_dout_sum[chunk * features + feature] = dout_sum;
    partial_dout_xhat_sum[chunk * features + feature] = dout_xhat_sum;
}

template <class T>
__global__ void batch_norm_finalize_grads(const T* __restrict__ partial_dout_sum,       // (chunks, C)
                                          const T* __restrict__ partial_dout_xhat_sum,  // (chunks, C)
                                          T* __restrict__ dbeta,                        // (C,): sum dout
                                          T* __restrict__ dgamma,                       // (C,): sum dout*xhat
                                          int channels, int chunks) {
    const int lane = threadIdx.x % warpSize, channel = warp_channel();
    if (channel >= channels) return;  // whole warps leave
    T dout_sum = T(0), dout_xhat_sum = T(0);
    for (int j = lane; j < chunks; j += warpSize) {
        dout_sum += partial_dout_sum[j * channels + channel];
        dout_xhat_sum += partial_dout_xhat_sum[j * channels + channel];
    }
    dout_sum = warp_sum(dout_sum);
    dout_xhat_sum = warp_sum(dout_xhat_sum);
    if (lane == 0) {
        dbeta[channel] = dout_sum;
        dgamma[channel] = dout_xhat_sum;
    }
}

template <class T>
__global__ void batch_norm_backward_dx(const T* __restrict__ dout,     // (N, C, S)
                                       const T* __restrict__ xhat,     // (N, C, S)
                                       const T* __restrict__ gamma,    // (C,)
                                       const T* __restrict__ inv_std,  // (C,)
                                       const T* __restrict__ dbeta,    // (C,)
                                       const T* __restrict__ dgamma,   // (C,)
                                       T* __restrict__ dx,             // (N, C, S)
                                       int total, int channels, int plane_size, T count, int training) {
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= total) return;
    const int channel = index / plane_size % channels;
    const T scale = gamma[channel] * inv_std[channel];
    // training:  dx = gamma*inv_std/n * (n*dout - sum(dout) - xhat*sum(dout*xhat))
    // inference: dx = gamma*inv_std * dout (the running statistics are constants)
    if (training) {
        dx[index] = (count * dout[index] - dbeta[channel] - xhat[index] * dgamma[channel]) * (scale / count);
    } else {
        dx[index] = dout[index] * scale;
    }
}
