// pool.cu -- 2-D max and average pooling over NCHW arrays, forward and backward.
//
// x (N, C, H, W) is read as N*C planes of H x W, out and dout (N, C, OH, OW) as planes of OH x OW.
// Window (oh, ow) covers input rows oh*stride_h - pad_top + [0, kernel_h) and columns
// ow*stride_w - pad_left + [0, kernel_w); cells outside the input (padding) are never read: max
// pooling skips them, average pooling sums the real cells and divides by their number, or with
// count_include_pad by kernel_h * kernel_w (PyTorch's default: the padding counts as zeros; every
// window lies inside the padded input, so that is its whole size). Every window holds at
// least one real cell (the launcher requires padding < kernel). A thread's cell index is an int (the
// launcher passes the element count as int32); plane offsets are 64-bit, as the other array may be larger.
//
// max_pool2d_forward   v1: one thread per output; the first maximum in row-major window order (a NaN
//                      wins, as NumPy's maximum), its index h*W + w within the plane saved as int32
// max_pool2d_backward  v1: one thread per input cell gathers dout from every window that contains the
//                      cell and chose it (windows overlap when stride < kernel): no atomics, deterministic
// avg_pool2d_forward   v1: one thread per output, the sum of the window's real cells / its divisor
// avg_pool2d_backward  v1: one thread per input cell gathers dout / divisor of every window that contains it

// The real cells [begin, end) of one dimension of the window that starts at `start` (may be < 0).
struct WindowSpan {
    int begin, end;
};

__device__ __forceinline__ WindowSpan window_span(int start, int kernel, int size) {
    return {max(start, 0), min(start + kernel, size)};
}

// The divisor of an average-pooling window: kernel_h * kernel_w, or its real cells only.
__device__ __forceinline__ int window_divisor(WindowSpan rows, WindowSpan cols, int kernel_h, int kernel_w,
                                              int count_include_pad) {
    return count_include_pad ? kernel_h * kernel_w : (rows.end - rows.begin) * (cols.end - cols.begin);
}

// The windows [first, last] of one dimension whose span contains input index `i`:
// window o covers o*stride - pad + [0, kernel), so i + pad - kernel < o*stride <= i + pad.
struct WindowRange {
    int first, last;
};

__device__ __forceinline__ WindowRange windows_containing(int i, int kernel, int stride, int pad,
                                                          int out_size) {
    const int shifted = i + pad;  // >= 0
    const int first = shifted >= kernel ? (shifted - kernel) / stride + 1 : 0;
    return {first, min(shifted / stride, out_size - 1)};
}

template <class T>
__global__ void max_pool2d_forward(const T* __restrict__ x,     // (N, C, H, W)
                                   T* __restrict__ out,         // (N, C, OH, OW)
                                   int* __restrict__ argmax,    // (N, C, OH, OW): h*W + w of the maximum
                                   int out_total, int height, int width, int out_height, int out_width,
                                   int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_top,
                                   int pad_left) {
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= out_total) return;
    const int ow = index % out_width, oh = index / out_width % out_height;
    const long long plane = index / (out_width * out_height);
    const WindowSpan rows = window_span(oh * stride_h - pad_top, kernel_h, height);
    const WindowSpan cols = window_span(ow * stride_w - pad_left, kernel_w, width);
    const T* x_plane = x + plane * height * width;
    int best_index = rows.begin * width + cols.begin;
    T best = x_plane[best_index];
    for (int h = rows.begin; h < rows.end; ++h) {
        for (int w = cols.begin; w < cols.end; ++w) {
            const T value = x_plane[h * width + w];
            if (value > best || (value != value && best == best)) {  // strictly greater: ties keep the first
                best = value;
                best_index = h * width + w;
            }
        }
    }
    out[index] = best;
    argmax[index] = best_index;
}

template <class T>
__global__ void max_pool2d_backward(const T* __restrict__ dout,     // (N, C, OH, OW)
                                    const int* __restrict__ argmax, // (N, C, OH, OW)
                                    T* __restrict__ dx,             // (N, C, H, W)
                                    int in_total, int height, int width, int out_height, int out_width,
                                    int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_top,
                                    int pad_left) {
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= in_total) return;
    const int w = index % width, h = index / width % height;
    const long long plane = index / (width * height);
    const WindowRange rows = windows_containing(h, kernel_h, stride_h, pad_top, out_height);
    const WindowRange cols = windows_containing(w, kernel_w, stride_w, pad_left, out_width);
    const T* dout_plane = dout + plane * out_height * out_width;
    const int* argmax_plane = argmax + plane * out_height * out_width;
    const int cell = h * width + w;
    T grad = T(0);
    for (int oh = rows.first; oh <= rows.last; ++oh) {
        for (int ow = cols.first; ow <= cols.last; ++ow) {
            const int o = oh * out_width + ow;
            if (argmax_plane[o] == cell) grad += dout_plane[o];
        }
    }
    dx[index] = grad;
}

template <class T>
__global__ void avg_pool2d_forward(const T* __restrict__ x,  // (N, C, H, W)
                                   T* __restrict__ out,      // (N, C, OH, OW)
                                   int out_total, int height, int width, int out_height, int out_width,
                                   int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_top,
                                   int pad_left, int count_include_pad) {
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= out_total) return;
    const int ow = index % out_width, oh = index / out_width % out_height;
    const long long plane = index / (out_width * out_height);
    const WindowSpan rows = window_span(oh * stride_h - pad_top, kernel_h, height);
    const WindowSpan cols = window_span(ow * stride_w - pad_left, kernel_w, width);
    const T* x_plane = x + plane * height * width;
    T sum = T(0);
    for (int h = rows.begin; h < rows.end; ++h) {
        for (int w = cols.begin; w < cols.end; ++w) sum += x_plane[h * width + w];
    }
    out[index] = sum / T(window_divisor(rows, cols, kernel_h, kernel_w, count_include_pad));
}

template <class T>
__global__ void avg_pool2d_backward(const T* __restrict__ dout,  // (N, C, OH, OW)
                                    T* __restrict__ dx,          // (N, C, H, W)
                                    int in_total, int height, int width, int out_height, int out_width,
                                    int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_top,
                                    int pad_left, int count_include_pad) {
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= in_total) return;
    const int w = index % width, h = index / width % height;
    const long long plane = index / (width * height);
    const WindowRange rows = windows_containing(h, kernel_h, stride_h, pad_top, out_height);
    const WindowRange cols = windows_containing(w, kernel_w, stride_w, pad_left, out_width);
    const T* dout_plane = dout + plane * out_height * out_width;
    T grad = T(0);
    for (int oh = rows.first; oh <= rows.last; ++oh) {
        const WindowSpan window_rows = window_span(oh * stride_h - pad_top, kernel_h, height);
        for (int ow = cols.first; ow <= cols.last; ++ow) {
            const WindowSpan window_cols = window_span(ow * stride_w - pad_left, kernel_w, width);
            const int divisor = window_divisor(window_rows, window_cols, kernel_h, kernel_w, count_include_pad);
            grad += dout_plane[oh * out_width + ow] / T(divisor);  // each window spreads dout evenly
        }
    }
    dx[index] = grad;
}
