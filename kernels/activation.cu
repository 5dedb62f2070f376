// activation.cu -- elementwise activations and the fused bias + ReLU, forward and backward.
//
//   relu(x) = max(x, 0)               drelu = dout * (out > 0)
//   tanh(x)                           dtanh = dout * (1 - out^2)
//   sigmoid(x) = 1 / (1 + e^-x)       dsig  = dout * out * (1 - out)
//   leaky_relu(x) = x > 0 ? x : s*x   dleaky = out > 0 ? dout : s * dout   (slope s >= 0, so out > 0 iff x > 0)
//   bias_relu(x, b) = relu(x + b[c])  dx = dout * (out > 0),  db[c] = sum of dx over all axes but 1
// Layouts: elementwise arrays are n contiguous elements (any shape, C order); bias_relu views x
// as (N, C, inner) with inner = H*W for (N, C, H, W) and inner = 1 for (N, F); b is (C,).
// Backward kernels read the forward output (the op's cache), not the input.
//
//   relu/tanh/sigmoid/leaky_relu_forward/backward
//                                       v1 grid-stride loop, one element per thread per step
//   bias_relu_forward                   v1 grid-stride loop, channel = (i / inner) % C
//   bias_relu_backward_channels         v1 (N, C, H, W): a block per channel (grid-stride over
//                                          channels) writes dx and reduces db[c] in a fixed order
//   bias_relu_backward_features         v1 (N, F): a 32 x 8 block per 32 features, each thread
//                                          sums a strided set of rows, then 8 partials per feature
// Every reduction has a fixed order (no atomics), so db is the same on every run.

#include "common.cuh"

constexpr int FEATURE_TILE = 32;  // features per block of bias_relu_backward_features (blockDim.x)
constexpr int ROW_GROUPS = 8;     // row groups per block of bias_relu_backward_features (blockDim.y)

namespace activation_detail {

// relu(x) = x unless x < 0 (NaN passes through, as numpy.maximum)
template <typename T>
__device__ __forceinline__ T relu(T x) {
    return x < T(0) ? T(0) : x;
}

// sigmoid without overflow: e = exp(-|x|) in (0, 1]; 1 / (1 + e) for x >= 0, e / (1 + e) below
template <typename T>
__device__ __forceinline__ T sigmoid(T x) {
    const T e = exp(-fabs(x));
    return (x >= T(0) ? T(1) : e) / (T(1) + e);
}

}  // namespace activation_detail

// ---------------------------------------------------------------------------------- elementwise
// Grid-stride loops index with unsigned int: i + stride stays below 2^32 for any n < 2^31.

template <typename T>
__global__ void relu_forward(const T* __restrict__ x, T* __restrict__ out, int n) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned int)n; i += blockDim.x * gridDim.x)
        out[i] = activation_detail::relu(x[i]);
}

template <typename T>
__global__ void relu_backward(const T* __restrict__ dout, const T* __restrict__ out, T* __restrict__ dx, int n) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned int)n; i += blockDim.x * gridDim.x)
        dx[i] = dout[i] * T(out[i] > T(0));
}

template <typename T>
__global__ void tanh_forward(const T* __restrict__ x, T* __restrict__ out, int n) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned int)n; i += blockDim.x * gridDim.x)
        out[i] = tanh(x[i]);
}

template <typename T>
__global__ void tanh_backward(const T* __restrict__ dout, const T* __restrict__ out, T* __restrict__ dx, int n) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned int)n; i += blockDim.x * gridDim.x)
        dx[i] = dout[i] * (T(1) - out[i] * out[i]);
}

template <typename T>
__global__ void sigmoid_forward(const T* __restrict__ x, T* __restrict__ out, int n) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned int)n; i += blockDim.x * gridDim.x)
        out[i] = activation_detail::sigmoid(x[i]);
}

template <typename T>
__global__ void sigmoid_backward(const T* __restrict__ dout, const T* __restrict__ out, T* __restrict__ dx, int n) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned int)n; i += blockDim.x * gridDim.x)
        dx[i] = dout[i] * out[i] * (T(1) - out[i]);
}

template <typename T>
__global__ void leaky_relu_forward(const T* __restrict__ x, T* __restrict__ out, int n, T negative_slope) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned int)n; i += blockDim.x * gridDim.x)
        out[i] = x[i] > T(0) ? x[i] : x[i] * negative_slope;  // NaN: NaN * slope = NaN
}

template <typename T>
__global__ void leaky_relu_backward(const T* __restrict__ dout, const T* __restrict__ out, T* __restrict__ dx, int n,
                                    T negative_slope) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned int)n; i += blockDim.x * gridDim.x)
        dx[i] = out[i] > T(0) ? dout[i] : dout[i] * negative_slope;
}

// ---------------------------------------------------------------------------------- bias + ReLU

template <typename T>
__global__ void bias_relu_forward(const T* __restrict__ x,  // (N, C, inner)
                                  const T* __restrict__ b,  // (C,)
                                  T* __restrict__ out,      // (N, C, inner)
                                  int n, int channels, int inner) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned int)n; i += blockDim.x * gridDim.x)
        out[i] = activation_detail::relu(x[i] + b[i / inner % channels]);
}

template <typename T>
__global__ void bias_relu_backward_channels(const T* __restrict__ dout,  // (N, C, inner)
                                            const T* __restrict__ out,   // (N, C, inner)
                                            T* __restrict__ dx,          // (N, C, inner)
                                            T* __restrict__ db,          // (C,)
                                            int batch, int channels, int inner) {
    __shared__ T scratch[32];  // block_sum's warp sums
    const int per_channel = batch * inner;
    for (int c = blockIdx.x; c < channels; c += gridDim.x) {
        T sum = T(0);
        for (int j = threadIdx.x; j < per_channel; j += blockDim.x) {
            const int sample = j / inner;
            const int i = (sample * channels + c) * inner + (j - sample * inner);
            const T g = dout[i] * T(out[i] > T(0));
            dx[i] = g;
            sum += g;
        }
        sum = block_sum(sum, scratch);
        if (threadIdx.x == 0) db[c] = sum;
    }
}

template <typename T>
__global__ void bias_relu_backward_features(const T* __restrict__ dout,  // (N, F)
                                            const T* __restrict__ out,   // (N, F)
                                            T* __restrict__ dx,          // (N, F)
                                            T* __restrict__ db,          // (F,)
                                            int batch, int features) {
    __shared__ T partial[ROW_GROUPS][FEATURE_TILE + 1];  // padded: the final column sums hit distinct banks
    const int feature = blockIdx.x * FEATURE_TILE + threadIdx.x;
    T sum = T(0);
    if (feature < features) {
        for (int row = threadIdx.y; row < batch; row += ROW_GROUPS) {
            const int i = row * features + feature;
            const T g = dout[i] * T(out[i] > T(0));
            dx[i] = g;
            sum += g;
        }
    }
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && feature < features) {
        T total = T(0);
#pragma unroll
        for (int group = 0; group < ROW_GROUPS; ++group) total += partial[group][threadIdx.x];
        db[feature] = total;
    }
}

// Explicit instantiations, so that `nvcc --cubin` compiles (and reports registers for) every kernel.
#define ACTIVATION_INSTANTIATE(T)                                                                          \
    template __global__ void relu_forward<T>(const T*, T*, int);                                           \
    template __global__ void relu_backward<T>(const T*, const T*, T*, int);                                \
    template __global__ void tanh_forward<T>(const T*, T*, int);                                           \
    template __global__ void tanh_backward<T>(const T*, const T*, T*, int);                                \
    template __global__ void sigmoid_forward<T>(const T*, T*, int);                                        \
    template __global__ void sigmoid_backward<T>(const T*, const T*, T*, int);                             \
    template __global__ void leaky_relu_forward<T>(const T*, T*, int, T);                                  \
    template __global__ void leaky_relu_backward<T>(const T*, const T*, T*, int, T);                       \
    template __global__ void bias_relu_forward<T>(const T*, const T*, T*, int, int, int);                  \
    template __global__ void bias_relu_backward_channels<T>(const T*, const T*, T*, T*, int, int, int);    \
    template __global__ void bias_relu_backward_features<T>(const T*, const T*, T*, T*, int, int);
ACTIVATION_INSTANTIATE(float)
ACTIVATION_INSTANTIATE(double)
