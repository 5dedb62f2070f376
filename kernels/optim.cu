// optim.cu -- in-place optimizer updates of a list of tensors in one launch (multi-tensor apply).
//
//   g = grad + weight_decay * w + l1 * sign(w)                     (coupled penalties)
//   Adam:    m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
//            w = w * decay - (lr / (1-b1^t)) * m / (sqrt(v / (1-b2^t)) + eps)
//            decay = 1 - lr * decoupled_weight_decay (AdamW; 1 for Adam)
//   SGD:     b = mu*b + g;  w -= lr * (nesterov ? g + mu*b : b)      (w -= lr * g without a buffer)
//   RMSprop: v = a*v + (1-a)*g^2;  centered: c = a*c + (1-a)*g, d = sqrt(v - c^2) + eps, else d = sqrt(v) + eps
//            momentum: b = mu*b + g/d, w -= lr * b;  else w -= lr * g/d
// t is each tensor's own step (the updates it has had, as PyTorch's per-parameter state["step"]);
// the host folds it into a table bias_corrections (tensors, 2) of T: [step_size = lr / (1-b1^t),
// bias_correction2 = 1-b2^t].
// Layouts: pointers (tensors, 4) for Adam [param, grad, exp_avg, exp_avg_sq] and (tensors, 3) for
// SGD [param, grad, momentum buffer or 0], (tensors, 5) for RMSprop [param, grad, square_avg,
// grad_avg or 0, momentum buffer or 0], device addresses of contiguous arrays of sizes[t]
// elements of T; chunks (blocks, 2) [tensor index, first element]: block b updates elements
// first .. first + chunk_size - 1 (clipped to the tensor's size) of its tensor.
//
//   adam_update     v1 a block per chunk, threads stride over the chunk
//                   v2 adds the decoupled weight decay factor (AdamW)
//   sgd_update      v1 the same
//   rmsprop_update  v1 the same

namespace optim_detail {

// sign(w): -1, 0 or 1 (0 for NaN)
template <typename T>
__device__ __forceinline__ T sign(T w) {
    return T(w > T(0)) - T(w < T(0));
}

// The chunk of block blockIdx.x: its tensor, first element and element count.
__device__ __forceinline__ void block_chunk(const long long* __restrict__ sizes, const long long* __restrict__ chunks,
                                            int chunk_size, int& tensor, long long& first, int& count) {
    tensor = (int)chunks[2 * blockIdx.x];
    first = chunks[2 * blockIdx.x + 1];
    const long long left = sizes[tensor] - first;
    count = left < chunk_size ? (int)left : chunk_size;
}

}  // namespace optim_detail

template <typename T>
__global__ void adam_update(const unsigned long long* __restrict__ pointers,  // (tensors, 4)
                            const long long* __restrict__ sizes,              // (tensors,)
                            const long long* __restrict__ chunks,             // (blocks, 2)
                            int chunk_size,
                            const T* __restrict__ bias_corrections,  // (tensors, 2)
                            T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T eps, T weight_decay, T l1,
                            T decay) {
    int tensor, count;
    long long first;
    optim_detail::block_chunk(sizes, chunks, chunk_size, tensor, first, count);
    const T step_size = bias_corrections[2 * tensor];
    const T bias_correction2 = bias_corrections[2 * tensor + 1];
    T* param = reinterpret_cast<T*>(pointers[4 * tensor]) + first;
    const T* grad = reinterpret_cast<const T*>(pointers[4 * tensor + 1]) + first;
    T* exp_avg = reinterpret_cast<T*>(pointers[4 * tensor + 2]) + first;
    T* exp_avg_sq = reinterpret_cast<T*>(pointers[4 * tensor + 3]) + first;
    for (int i = threadIdx.x; i < count; i += blockDim.x) {
        const T w = param[i];
        const T g = grad[i] + weight_decay * w + l1 * optim_detail::sign(w);
        const T m = exp_avg[i] * beta1 + one_minus_beta1 * g;
        const T v = exp_avg_sq[i] * beta2 + one_minus_beta2 * (g * g);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = w * decay - step_size * (m / (sqrt(v / bias_correction2) + eps));
    }
}

template <typename T>
__global__ void sgd_update(const unsigned long long* __restrict__ pointers,  // (tensors, 3)
                           const long long* __restrict__ sizes,              // (tensors,)
                           const long long* __restrict__ chunks,             // (blocks, 2)
                           int chunk_size, T lr, T momentum, int nesterov, T weight_decay, T l1) {
    int tensor, count;
    long long first;
    optim_detail::block_chunk(sizes, chunks, chunk_size, tensor, first, count);
    T* param = reinterpret_cast<T*>(pointers[3 * tensor]) + first;
    const T* grad = reinterpret_cast<const T*>(pointers[3 * tensor + 1]) + first;
    T* buffer = pointers[3 * tensor + 2] ? reinterpret_cast<T*>(pointers[3 * tensor + 2]) + first : nullptr;
    for (int i = threadIdx.x; i < count; i += blockDim.x) {
        const T w = param[i];
        T g = grad[i] + weight_decay * w + l1 * optim_detail::sign(w);
        if (buffer) {
            const T b = buffer[i] * momentum + g;
            buffer[i] = b;
            g = nesterov ? g + momentum * b : b;
        }
        param[i] = w - lr * g;
    }
}

template <typename T>
__global__ void rmsprop_update(const unsigned long long* __restrict__ pointers,  // (tensors, 5)
                               const long long* __restrict__ sizes,              // (tensors,)
                               const long long* __restrict__ chunks,             // (blocks, 2)
                               int chunk_size, T lr, T alpha, T one_minus_alpha, T eps, T momentum, T weight_decay,
                               T l1) {
    int tensor, count;
    long long first;
    optim_detail::block_chunk(sizes, chunks, chunk_size, tensor, first, count);
    const unsigned long long* table = pointers + 5 * tensor;
    T* param = reinterpret_cast<T*>(table[0]) + first;
    const T* grad = reinterpret_cast<const T*>(table[1]) + first;
    T* square_avg = reinterpret_cast<T*>(table[2]) + first;
    T* grad_avg = table[3] ? reinterpret_cast<T*>(table[3]) + first : nullptr;
    T* buffer = table[4] ? reinterpret_cast<T*>(table[4]) + first : nullptr;
    for (int i = threadIdx.x; i < count; i += blockDim.x) {
        const T w = param[i];
        const T g = grad[i] + weight_decay * w + l1 * optim_detail::sign(w);
        const T v = square_avg[i] * alpha + one_minus_alpha * (g * g);
        square_avg[i] = v;
        T denom;
        if (grad_avg) {
            const T c = grad_avg[i] * alpha + one_minus_alpha * g;
            grad_avg[i] = c;
            denom = sqrt(v - c * c) + eps;
        } else {
            denom = sqrt(v) + eps;
        }
        T step = g / denom;
        if (buffer) {
            step = buffer[i] * momentum + step;
            buffer[i] = step;
        }
        param[i] = w - lr * step;
    }
}

// Explicit instantiations, so that `nvcc --cubin` compiles (and reports registers for) every kernel.
#define OPTIM_INSTANTIATE(T)                                                                                   \
    template __global__ void adam_update<T>(const unsigned long long*, const long long*, const long long*, int, \
                                            const T*, T, T, T, T, T, T, T, T);                                  \
    template __global__ void sgd_update<T>(const unsigned long long*, const long long*, const long long*, int,  \
                                           T, T, int, T, T);                                                    \
    template __global__ void rmsprop_update<T>(const unsigned long long*, const long long*, const long long*,   \
                                               int, T, T, T, T, T, T, T);
OPTIM_INSTANTIATE(float)
OPTIM_INSTANTIATE(double)
