// conv.cu -- 2-D convolution (cross-correlation, as in every DL framework) over NCHW arrays:
// forward with a fused bias + ReLU epilogue, backward-data, backward-weight and the bias gradient.
//
//   out[n, k, oh, ow] = act(b[k] + sum_{c, i, j} w[k, c, i, j] * x[n, c, oh*sh - pt + i*dh, ow*sw - pl + j*dw])
// x (N, C, H, W), w (K, C, kh, kw), b (K,), out and dout (N, K, OH, OW); cells outside x (the
// padding) are zero; (dh, dw) is the dilation (1: adjacent taps). Tap (i, j) is decoded from the
// reduction index once and scaled to its offset (i*dh, j*dw); nothing else depends on dilation.
// After a fused ReLU the backward kernels use dout * (out > 0), masking on the fly (mask_relu,
// relu_out = the forward output). P = OH*OW pixels per image, R = C*kh*kw taps.
//
// As GEMMs (the order of a reduction is free, so no im2col matrix is ever stored):
//   forward          out(k, (n, p))      = w(k, r) @ cols(r, (n, p))           M = K, N = N*P, Kred = R
//   backward data    dx(c, (n, h, w))    = wt(c, (k, i, j)) @ g((k, i, j), (n, h, w))
//                                          M = C, N = N*H*W, Kred = K*kh*kw; wt[c, k, i, j] = w[k, c, i, j],
//                                          g = dout[n, k, oh, ow] where oh*sh = h + pt - i*dh, ow*sw = w + pl - j*dw
//   backward weight  dw(k, r)            = dout(k, (n, p)) @ cols(r, (n, p))^T  M = K, N = R, Kred = N*P
//                    db(k)               = sum over (n, p) of dout(k, (n, p))
//
// conv2d_forward_direct          v1: one thread per output, loops over c, i, j; bias + ReLU
// conv2d_backward_data_direct    v1: one thread per input cell, gathers the windows that cover it
// conv2d_backward_weight_direct  v1: one thread per weight, sums over n, oh, ow in order
// conv2d_backward_bias_direct    v1: one block per channel, strided sums then a fixed-order tree
// conv2d_forward_igemm           v2: implicit GEMM on gemm_tiles.cuh (64 x 128 tiles, 8 x 8 outputs
//                                    per thread, two shared stages, im2col gathered while loading);
//                                    bias + ReLU epilogue with 16-byte stores; blockIdx.z splits
//                                    Kred when the tiles alone cannot fill the GPU
// conv2d_backward_data_igemm     v2: the same GEMM of the transposed weights with gathered dout
// conv2d_backward_weight_igemm   v2: the same GEMM, blockIdx.z reducing one slice of N*P into a
//                                    partial dw and db (the dout tile's row sums); no atomics
// conv2d_transpose_weights       w (K, C, kh, kw) -> wt (C, K, kh, kw) for backward data v2
// sum_splits, sum_splits_bias_relu (gemm_tiles.cuh) add v2's partial slices in a fixed order
//
// Indices are 32-bit: the launcher requires every array (and partial buffer) under 2^31 elements.
#include "common.cuh"
#include "gemm_tiles.cuh"

struct ConvGeometry {
    int batch, channels, height, width;  // x (N, C, H, W)
    int kernels, kernel_h, kernel_w;     // w (K, C, kh, kw)
    int stride_h, stride_w, pad_top, pad_left;
    int out_h, out_w;                    // out (N, K, OH, OW)
    int dilation_h, dilation_w;          // tap (i, j) reads x at offset (i*dh, j*dw) in the window
};

// Every kernel takes the geometry as these 15 ints, in this order.
#define CONV_GEOMETRY_PARAMS                                                                          \
    int batch, int channels, int height, int width, int kernels, int kernel_h, int kernel_w, int stride_h, \
        int stride_w, int pad_top, int pad_left, int out_h, int out_w, int dilation_h, int dilation_w
#define CONV_GEOMETRY                                                                                 \
    ConvGeometry { batch, channels, height, width, kernels, kernel_h, kernel_w, stride_h, stride_w, pad_top, \
                   pad_left, out_h, out_w, dilation_h, dilation_w }

namespace conv_detail {

using namespace tiles;

constexpr int kOutside = -(1 << 29);  // an offset that moves a cell far outside every image

__device__ __forceinline__ bool inside(int row, int col, int rows, int cols) {
    return (unsigned)row < (unsigned)rows && (unsigned)col < (unsigned)cols;
}

// dout[index], times (relu_out[index] > 0) when mask_relu
template <typename T>
__device__ __forceinline__ T masked_dout(const T* dout, const T* relu_out, int mask_relu, int index) {
    const T value = dout[index];
    return mask_relu ? value * T(relu_out[index] > T(0)) : value;
}

// B(r, q) = x[n, c, oh*sh - pt + i*dh, ow*sw - pl + j*dw] for tap r = (c, i, j) and output pixel
// q = (n, oh, ow). Thread t loads tap k0 + t / 16 for its 8 pixels col0 + t % 16 + 16s, each decoded
// once: a slice costs one tap decode and 8 bounds-checked loads (16 lanes read 16 adjacent pixels).
template <typename T>
struct Im2colB {
    static constexpr int kCount = BN * BK / THREADS;
    static constexpr int kPad = 16;  // a warp stores two rows: 16 banks apart, they never collide
    const T* x;
    int height, width, kernel_w, kernel_size, taps, dilation_h, dilation_w;
    int pixel_offset[kCount];        // n*C*H*W + top*W + left
    int top[kCount], left[kCount];   // oh*sh - pt, ow*sw - pl (top = kOutside past the last pixel)

    __device__ Im2colB(const T* x_, const ConvGeometry& g, int col0)
        : x(x_), height(g.height), width(g.width), kernel_w(g.kernel_w), kernel_size(g.kernel_h * g.kernel_w),
          taps(g.channels * g.kernel_h * g.kernel_w), dilation_h(g.dilation_h), dilation_w(g.dilation_w) {
        const int pixels = g.out_h * g.out_w;
#pragma unroll
        for (int s = 0; s < kCount; s++) {
            const int q = col0 + threadIdx.x % THREAD_COLUMNS + s * THREAD_COLUMNS;
            top[s] = kOutside, left[s] = 0, pixel_offset[s] = 0;
            if (q < g.batch * pixels) {
                const int n = q / pixels, p = q - n * pixels, oh = p / g.out_w, ow = p - oh * g.out_w;
                top[s] = oh * g.stride_h - g.pad_top;
                left[s] = ow * g.stride_w - g.pad_left;
                pixel_offset[s] = n * g.channels * g.height * g.width + top[s] * g.width + left[s];
            }
        }
    }
    __device__ void fetch(int k0, T (&v)[kCount]) const {
        const int r = k0 + threadIdx.x / THREAD_COLUMNS;
        int i = kOutside, j = 0, tap_offset = 0;  // (i, j): the tap's offset in the window
        if (r < taps) {
            const int c = r / kernel_size, rest = r - c * kernel_size, tap_i = rest / kernel_w;
            i = tap_i * dilation_h, j = (rest - tap_i * kernel_w) * dilation_w;
            tap_offset = (c * height + i) * width + j;
        }
#pragma unroll
        for (int s = 0; s < kCount; s++)
            v[s] = inside(top[s] + i, left[s] + j, height, width) ? x[pixel_offset[s] + tap_offset] : T(0);
    }
    __device__ void store(const T (&v)[kCount], T (&tile)[BK][BN + kPad]) const {
#pragma unroll
        for (int s = 0; s < kCount; s++)
            tile[threadIdx.x / THREAD_COLUMNS][threadIdx.x % THREAD_COLUMNS + s * THREAD_COLUMNS] = v[s];
    }
};

// B(r, q) = dout[n, k, oh, ow] (masked) for tap r = (k, i, j) and input cell q = (n, h, w), where
// oh*sh = h + pt - i*dh and ow*sw = w + pl - j*dw; zero where no output pixel lies there. Thread
// mapping as Im2colB.
template <typename T>
struct DoutGatherB {
    static constexpr int kCount = BN * BK / THREADS;
    static constexpr int kPad = 16;
    const T *dout, *relu_out;
    int mask_relu, out_h, out_w, stride_h, stride_w, kernel_w, kernel_size, taps, dilation_h, dilation_w;
    bool unit_stride;
    int image_offset[kCount];           // n*K*OH*OW
    int padded_h[kCount], padded_w[kCount];  // h + pt, w + pl (padded_h = kOutside past the last cell)

    __device__ DoutGatherB(const T* dout_, const T* relu_out_, int mask_relu_, const ConvGeometry& g, int col0)
        : dout(dout_), relu_out(relu_out_), mask_relu(mask_relu_), out_h(g.out_h), out_w(g.out_w),
          stride_h(g.stride_h), stride_w(g.stride_w), kernel_w(g.kernel_w), kernel_size(g.kernel_h * g.kernel_w),
          taps(g.kernels * g.kernel_h * g.kernel_w), dilation_h(g.dilation_h), dilation_w(g.dilation_w),
          unit_stride(g.stride_h == 1 && g.stride_w == 1) {
        const int cells = g.height * g.width;
#pragma unroll
        for (int s = 0; s < kCount; s++) {
            const int q = col0 + threadIdx.x % THREAD_COLUMNS + s * THREAD_COLUMNS;
            padded_h[s] = kOutside, padded_w[s] = 0, image_offset[s] = 0;
            if (q < g.batch * cells) {
                const int n = q / cells, rest = q - n * cells, h = rest / g.width;
                padded_h[s] = h + g.pad_top;
                padded_w[s] = rest - h * g.width + g.pad_left;
                image_offset[s] = n * g.kernels * g.out_h * g.out_w;
            }
        }
    }
    __device__ void fetch(int k0, T (&v)[kCount]) const {
        const int r = k0 + threadIdx.x / THREAD_COLUMNS;
        int i = -kOutside, j = 0, plane_offset = 0;  // (i*dh, j*dw); past the last tap: every oh_scaled < 0
        if (r < taps) {
            const int k = r / kernel_size, rest = r - k * kernel_size, tap_i = rest / kernel_w;
            i = tap_i * dilation_h, j = (rest - tap_i * kernel_w) * dilation_w;
            plane_offset = k * out_h * out_w;
        }
#pragma unroll
        for (int s = 0; s < kCount; s++) {
            const int oh_scaled = padded_h[s] - i, ow_scaled = padded_w[s] - j;  // oh*sh, ow*sw
            int oh = oh_scaled, ow = ow_scaled;
            bool hit = oh_scaled >= 0 && ow_scaled >= 0;
            if (!unit_stride) {
                oh = oh_scaled / stride_h, ow = ow_scaled / stride_w;
                hit = hit && oh * stride_h == oh_scaled && ow * stride_w == ow_scaled;
            }
            v[s] = hit && oh < out_h && ow < out_w
                       ? masked_dout(dout, relu_out, mask_relu, image_offset[s] + plane_offset + oh * out_w + ow)
                       : T(0);
        }
    }
    __device__ void store(const T (&v)[kCount], T (&tile)[BK][BN + kPad]) const {
#pragma unroll
        for (int s = 0; s < kCount; s++)
            tile[threadIdx.x / THREAD_COLUMNS][threadIdx.x % THREAD_COLUMNS + s * THREAD_COLUMNS] = v[s];
    }
};

// A(k, q) = dout[n, k, p] (masked) for output channel k and output pixel q = (n, p). Thread t loads
// q = k0 + t % 8 of channels row0 + t / 8 + 16s (s < 4): one decode per slice, 8 lanes read 8
// adjacent pixels.
template <typename T>
struct DoutRowsA {
    static constexpr int kCount = BM * BK / THREADS, kPad = 4;
    const T *dout, *relu_out;
    int mask_relu, kernels, pixels, columns, row0;

    __device__ void fetch(int k0, T (&v)[kCount]) const {
        const int q = k0 + threadIdx.x % BK, m = row0 + threadIdx.x / BK;
        int offset = 0;
        if (q < columns) {
            const int n = q / pixels;
            offset = n * kernels * pixels + q - n * pixels;
        }
#pragma unroll
        for (int s = 0; s < kCount; s++) {
            const int k = m + s * (THREADS / BK);
            v[s] = q < columns && k < kernels ? masked_dout(dout, relu_out, mask_relu, offset + k * pixels) : T(0);
        }
    }
    __device__ void store(const T (&v)[kCount], T (&tile)[BK][BM + kPad]) const {
#pragma unroll
        for (int s = 0; s < kCount; s++) tile[threadIdx.x % BK][threadIdx.x / BK + s * (THREADS / BK)] = v[s];
    }
};

// B(q, r) = x[n, c, oh*sh - pt + i*dh, ow*sw - pl + j*dw] for output pixel q = (n, oh, ow) and tap
// r = (c, i, j): Im2colB with the roles of rows and columns swapped. Thread t loads pixel
// k0 + t / 16 for its 8 taps col0 + t % 16 + 16s, each decoded once.
template <typename T>
struct Im2colTapsB {
    static constexpr int kCount = BN * BK / THREADS;
    static constexpr int kPad = 16;
    const T* x;
    int height, width, image_size, stride_h, stride_w, pad_top, pad_left, out_w, pixels, columns;
    int tap_offset[kCount];             // (c*H + i*dh)*W + j*dw
    int tap_row[kCount], tap_col[kCount];  // i*dh, j*dw (tap_row = kOutside past the last tap)

    __device__ Im2colTapsB(const T* x_, const ConvGeometry& g, int col0)
        : x(x_), height(g.height), width(g.width), image_size(g.channels * g.height * g.width),
          stride_h(g.stride_h), stride_w(g.stride_w), pad_top(g.pad_top), pad_left(g.pad_left), out_w(g.out_w),
          pixels(g.out_h * g.out_w), columns(g.batch * g.out_h * g.out_w) {
        const int kernel_size = g.kernel_h * g.kernel_w;
#pragma unroll
        for (int s = 0; s < kCount; s++) {
            const int r = col0 + threadIdx.x % THREAD_COLUMNS + s * THREAD_COLUMNS;
            tap_row[s] = kOutside, tap_col[s] = 0, tap_offset[s] = 0;
            if (r < g.channels * kernel_size) {
                const int c = r / kernel_size, rest = r - c * kernel_size, i = rest / g.kernel_w;
                tap_row[s] = i * g.dilation_h;
                tap_col[s] = (rest - i * g.kernel_w) * g.dilation_w;
                tap_offset[s] = (c * g.height + tap_row[s]) * g.width + tap_col[s];
            }
        }
    }
    __device__ void fetch(int k0, T (&v)[kCount]) const {
        const int q = k0 + threadIdx.x / THREAD_COLUMNS;
        int top = kOutside, left = 0, pixel_offset = 0;
        if (q < columns) {
            const int n = q / pixels, p = q - n * pixels, oh = p / out_w;
            top = oh * stride_h - pad_top;
            left = (p - oh * out_w) * stride_w - pad_left;
            pixel_offset = n * image_size + top * width + left;
        }
#pragma unroll
        for (int s = 0; s < kCount; s++)
            v[s] = inside(top + tap_row[s], left + tap_col[s], height, width) ? x[pixel_offset + tap_offset[s]] : T(0);
    }
    __device__ void store(const T (&v)[kCount], T (&tile)[BK][BN + kPad]) const {
#pragma unroll
        for (int s = 0; s < kCount; s++)
            tile[threadIdx.x / THREAD_COLUMNS][threadIdx.x % THREAD_COLUMNS + s * THREAD_COLUMNS] = v[s];
    }
};

// Writes this thread's outputs of a (rows) x (batch * plane) tile into out (batch, rows, plane):
// element (row, q) goes to ((q / plane) * rows + row) * plane + q % plane, plus bias[row] when bias
// is given, through ReLU when apply_relu. Four adjacent columns are one 16-byte store when
// plane % 4 == 0 (they then lie in one plane, aligned).
template <typename T>
__device__ __forceinline__ void store_channel_planes(T* out, const T (&acc)[TM][TN], int rows, int plane, int columns,
                                                     const T* bias, bool apply_relu) {
    const int row0 = thread_row0(), col0 = thread_col0();
    const bool vector = plane % 4 == 0 && aligned16(out);
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int q0 = col0 + half * (BN / 2);
        if (q0 >= columns) continue;
        const int n0 = q0 / plane, p0 = q0 - n0 * plane;
#pragma unroll
        for (int i = 0; i < TM; i++) {
            const int row = row0 + i;
            if (row >= rows) break;
            T v[4];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                v[j] = acc[i][half * 4 + j] + (bias != nullptr ? bias[row] : T(0));
                if (apply_relu && v[j] < T(0)) v[j] = T(0);
            }
            if (vector) {
                store4(out + (n0 * rows + row) * plane + p0, v);
                continue;
            }
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int q = q0 + j, n = q / plane;
                if (q < columns) out[(n * rows + row) * plane + q - n * plane] = v[j];
            }
        }
    }
}

}  // namespace conv_detail

// ------------------------------------------------------------------------------------ v1: direct

template <typename T>
__global__ void conv2d_forward_direct(const T* __restrict__ x,     // (N, C, H, W)
                                      const T* __restrict__ w,     // (K, C, kh, kw)
                                      const T* __restrict__ bias,  // (K,)
                                      T* __restrict__ out,         // (N, K, OH, OW)
                                      CONV_GEOMETRY_PARAMS, int apply_relu) {
    const ConvGeometry g = CONV_GEOMETRY;
    const int e = blockIdx.x * blockDim.x + threadIdx.x;  // ((n*K + k)*OH + oh)*OW + ow
    if (e >= g.batch * g.kernels * g.out_h * g.out_w) return;
    const int ow = e % g.out_w, oh = e / g.out_w % g.out_h, k = e / (g.out_w * g.out_h) % g.kernels;
    const int n = e / (g.out_w * g.out_h * g.kernels);
    const int top = oh * g.stride_h - g.pad_top, left = ow * g.stride_w - g.pad_left;
    T sum = bias[k];
    for (int c = 0; c < g.channels; c++) {
        const T* x_plane = x + (n * g.channels + c) * g.height * g.width;
        const T* w_taps = w + (k * g.channels + c) * g.kernel_h * g.kernel_w;
        for (int i = 0; i < g.kernel_h; i++) {
            const int row = top + i * g.dilation_h;
            if ((unsigned)row >= (unsigned)g.height) continue;
            for (int j = 0; j < g.kernel_w; j++) {
                const int col = left + j * g.dilation_w;
                if ((unsigned)col >= (unsigned)g.width) continue;
                sum += x_plane[row * g.width + col] * w_taps[i * g.kernel_w + j];
            }
        }
    }
    out[e] = apply_relu && sum < T(0) ? T(0) : sum;
}

template <typename T>
__global__ void conv2d_backward_data_direct(const T* __restrict__ dout,      // (N, K, OH, OW)
                                            const T* __restrict__ relu_out,  // (N, K, OH, OW), read when mask_relu
                                            const T* __restrict__ w,         // (K, C, kh, kw)
                                            T* __restrict__ dx,              // (N, C, H, W)
                                            CONV_GEOMETRY_PARAMS, int mask_relu) {
    const ConvGeometry g = CONV_GEOMETRY;
    const int e = blockIdx.x * blockDim.x + threadIdx.x;  // ((n*C + c)*H + h)*W + w
    if (e >= g.batch * g.channels * g.height * g.width) return;
    const int col = e % g.width, row = e / g.width % g.height, c = e / (g.width * g.height) % g.channels;
    const int n = e / (g.width * g.height * g.channels);
    T sum = T(0);
    for (int k = 0; k < g.kernels; k++) {
        const int plane = (n * g.kernels + k) * g.out_h * g.out_w;
        const T* w_taps = w + (k * g.channels + c) * g.kernel_h * g.kernel_w;
        for (int i = 0; i < g.kernel_h; i++) {
            const int oh_scaled = row + g.pad_top - i * g.dilation_h;  // output row oh's window has this row at tap i
            if (oh_scaled < 0 || oh_scaled % g.stride_h != 0 || oh_scaled / g.stride_h >= g.out_h) continue;
            for (int j = 0; j < g.kernel_w; j++) {
                const int ow_scaled = col + g.pad_left - j * g.dilation_w;
                if (ow_scaled < 0 || ow_scaled % g.stride_w != 0 || ow_scaled / g.stride_w >= g.out_w) continue;
                const int index = plane + oh_scaled / g.stride_h * g.out_w + ow_scaled / g.stride_w;
                sum += conv_detail::masked_dout(dout, relu_out, mask_relu, index) * w_taps[i * g.kernel_w + j];
            }
        }
    }
    dx[e] = sum;
}

template <typename T>
__global__ void conv2d_backward_weight_direct(const T* __restrict__ dout,      // (N, K, OH, OW)
                                              const T* __restrict__ relu_out,  // (N, K, OH, OW), read when mask_relu
                                              const T* __restrict__ x,         // (N, C, H, W)
                                              T* __restrict__ dw,              // (K, C, kh, kw)
                                              CONV_GEOMETRY_PARAMS, int mask_relu) {
    const ConvGeometry g = CONV_GEOMETRY;
    const int e = blockIdx.x * blockDim.x + threadIdx.x;  // ((k*C + c)*kh + i)*kw + j
    if (e >= g.kernels * g.channels * g.kernel_h * g.kernel_w) return;
    const int j = e % g.kernel_w, i = e / g.kernel_w % g.kernel_h, c = e / (g.kernel_w * g.kernel_h) % g.channels;
    const int k = e / (g.kernel_w * g.kernel_h * g.channels);
    T sum = T(0);
    for (int n = 0; n < g.batch; n++) {
        const T* x_plane = x + (n * g.channels + c) * g.height * g.width;
        const int plane = (n * g.kernels + k) * g.out_h * g.out_w;
        for (int oh = 0; oh < g.out_h; oh++) {
            const int row = oh * g.stride_h - g.pad_top + i * g.dilation_h;
            if ((unsigned)row >= (unsigned)g.height) continue;
            for (int ow = 0; ow < g.out_w; ow++) {
                const int col = ow * g.stride_w - g.pad_left + j * g.dilation_w;
                if ((unsigned)col >= (unsigned)g.width) continue;
                sum += conv_detail::masked_dout(dout, relu_out, mask_relu, plane + oh * g.out_w + ow) *
                       x_plane[row * g.width + col];
            }
        }
    }
    dw[e] = sum;
}

// db[k] = sum over n, p of dout[n, k, p]; one block (a multiple of 32 threads) per channel k.
template <typename T>
__global__ void conv2d_backward_bias_direct(const T* __restrict__ dout,      // (N, K, P)
                                            const T* __restrict__ relu_out,  // (N, K, P), read when mask_relu
                                            T* __restrict__ db,              // (K,)
                                            int batch, int kernels, int pixels, int mask_relu) {
    __shared__ T scratch[32];
    const int k = blockIdx.x;
    T sum = T(0);
    for (int q = threadIdx.x; q < batch * pixels; q += blockDim.x) {
        const int n = q / pixels;
        sum += conv_detail::masked_dout(dout, relu_out, mask_relu, (n * kernels + k) * pixels + q - n * pixels);
    }
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) db[k] = sum;
}

// ---------------------------------------------------------------------------- v2: implicit GEMM
// Launched with tiles::THREADS threads, grid (ceil(N / BN), ceil(M / BM), splits); block z reduces
// [z * k_chunk, (z + 1) * k_chunk) of Kred (k_chunk a multiple of BK).

// With one split: out = act(b + w @ cols). With S splits: slice z of out (S, N, K, OH, OW) gets
// block z's partial w @ cols (no bias, no ReLU); sum_splits_bias_relu finishes.
template <typename T>
__global__ void __launch_bounds__(tiles::THREADS)
    conv2d_forward_igemm(const T* __restrict__ x,     // (N, C, H, W)
                         const T* __restrict__ w,     // (K, C, kh, kw) = (K, R)
                         const T* __restrict__ bias,  // (K,)
                         T* __restrict__ out,         // (N, K, OH, OW), or (splits, N, K, OH, OW) partial
                         CONV_GEOMETRY_PARAMS, int k_chunk, int apply_relu) {
    using namespace conv_detail;
    const ConvGeometry g = CONV_GEOMETRY;
    const int taps = g.channels * g.kernel_h * g.kernel_w, pixels = g.out_h * g.out_w;
    const Slice slice = reduction_slice(k_chunk, taps);
    const RowMajorA<T> load_w{w, taps, g.kernels, taps, (int)blockIdx.y * BM};
    const Im2colB<T> load_x(x, g, blockIdx.x * BN);
    T acc[TM][TN] = {};
    tile_product(load_w, load_x, slice.begin, slice.end, acc);
    const bool finish = gridDim.z == 1;
    store_channel_planes(out + (long long)blockIdx.z * g.batch * g.kernels * pixels, acc, g.kernels, pixels,
                         g.batch * pixels, finish ? bias : nullptr, finish && apply_relu);
}

// dx = wt @ g over slices as conv2d_forward_igemm (no bias): with S splits, slice z of dx
// (S, N, C, H, W) gets block z's partial and sum_splits finishes.
template <typename T>
__global__ void __launch_bounds__(tiles::THREADS)
    conv2d_backward_data_igemm(const T* __restrict__ wt,        // (C, K, kh, kw)
                               const T* __restrict__ dout,      // (N, K, OH, OW)
                               const T* __restrict__ relu_out,  // (N, K, OH, OW), read when mask_relu
                               T* __restrict__ dx,              // (N, C, H, W), or (splits, N, C, H, W) partial
                               CONV_GEOMETRY_PARAMS, int k_chunk, int mask_relu) {
    using namespace conv_detail;
    const ConvGeometry g = CONV_GEOMETRY;
    const int depth = g.kernels * g.kernel_h * g.kernel_w, cells = g.height * g.width;
    const Slice slice = reduction_slice(k_chunk, depth);
    const RowMajorA<T> load_w{wt, depth, g.channels, depth, (int)blockIdx.y * BM};
    const DoutGatherB<T> load_dout(dout, relu_out, mask_relu, g, blockIdx.x * BN);
    T acc[TM][TN] = {};
    tile_product(load_w, load_dout, slice.begin, slice.end, acc);
    store_channel_planes(dx + (long long)blockIdx.z * g.batch * g.channels * cells, acc, g.channels, cells,
                         g.batch * cells, (const T*)nullptr, false);
}

// Slice z of partial (splits, K*R + K) gets block z's dw (K, R) over its slice of the N*P pixels,
// then db (K,), the row sums of the same dout slice (written by the blocks of column tile 0).
// With one split, partial is [dw | db] itself; else sum_splits adds the slices.
template <typename T>
__global__ void __launch_bounds__(tiles::THREADS)
    conv2d_backward_weight_igemm(const T* __restrict__ dout,      // (N, K, OH, OW)
                                 const T* __restrict__ relu_out,  // (N, K, OH, OW), read when mask_relu
                                 const T* __restrict__ x,         // (N, C, H, W)
                                 T* __restrict__ partial,         // (splits, K*R + K)
                                 CONV_GEOMETRY_PARAMS, int k_chunk, int mask_relu) {
    using namespace conv_detail;
    const ConvGeometry g = CONV_GEOMETRY;
    const int taps = g.channels * g.kernel_h * g.kernel_w, pixels = g.out_h * g.out_w;
    const Slice slice = reduction_slice(k_chunk, g.batch * pixels);
    const int row0 = blockIdx.y * BM;
    const DoutRowsA<T> load_dout{dout, relu_out, mask_relu, g.kernels, pixels, g.batch * pixels, row0};
    const Im2colTapsB<T> load_x(x, g, blockIdx.x * BN);
    T acc[TM][TN] = {};
    T row_sum = T(0);
    tile_product_with_row_sums(load_dout, load_x, slice.begin, slice.end, acc, row_sum, blockIdx.x == 0);
    T* dw = partial + (long long)blockIdx.z * (g.kernels * taps + g.kernels);
    const bool vector = taps % 4 == 0 && aligned16(dw);
#pragma unroll
    for (int i = 0; i < TM; i++) {
        store_row4(dw, g.kernels, taps, vector, thread_row0() + i, thread_col0(), acc[i]);
        store_row4(dw, g.kernels, taps, vector, thread_row0() + i, thread_col0() + BN / 2, acc[i] + 4);
    }
    if (blockIdx.x == 0 && threadIdx.x < BM && row0 + (int)threadIdx.x < g.kernels)
        dw[g.kernels * taps + row0 + threadIdx.x] = row_sum;
}

// wt[c, k, t] = w[k, c, t] for the kh*kw taps t.
template <typename T>
__global__ void conv2d_transpose_weights(const T* __restrict__ w,  // (K, C, kh*kw)
                                         T* __restrict__ wt,       // (C, K, kh*kw)
                                         int kernels, int channels, int kernel_size) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;  // (c*K + k)*kh*kw + t
    if (e >= kernels * channels * kernel_size) return;
    const int t = e % kernel_size, k = e / kernel_size % kernels, c = e / (kernel_size * kernels);
    wt[e] = w[(k * channels + c) * kernel_size + t];
}

// Explicit instantiations, so that `nvcc --cubin` compiles (and reports registers for) every kernel.
#define CONV_INSTANTIATE(T)                                                                                    \
    template __global__ void conv2d_forward_direct<T>(const T*, const T*, const T*, T*, CONV_GEOMETRY_PARAMS, int); \
    template __global__ void conv2d_backward_data_direct<T>(const T*, const T*, const T*, T*, CONV_GEOMETRY_PARAMS, \
                                                            int);                                              \
    template __global__ void conv2d_backward_weight_direct<T>(const T*, const T*, const T*, T*,                \
                                                              CONV_GEOMETRY_PARAMS, int);                      \
    template __global__ void conv2d_backward_bias_direct<T>(const T*, const T*, T*, int, int, int, int);      \
    template __global__ void conv2d_forward_igemm<T>(const T*, const T*, const T*, T*, CONV_GEOMETRY_PARAMS, int, \
                                                     int);                                                     \
    template __global__ void conv2d_backward_data_igemm<T>(const T*, const T*, const T*, T*, CONV_GEOMETRY_PARAMS, \
                                                           int, int);                                          \
    template __global__ void conv2d_backward_weight_igemm<T>(const T*, const T*, const T*, T*,                 \
                                                             CONV_GEOMETRY_PARAMS, int, int);                  \
    template __global__ void conv2d_transpose_weights<T>(const T*, T*, int, int, int);                        \
    template __global__ void sum_splits<T>(const T*, T*, int, int);                                            \
    template __global__ void sum_splits_bias_relu<T>(const T*, const T*, T*, int, int, int, int, int);
CONV_INSTANTIATE(float)
CONV_INSTANTIATE(double)
