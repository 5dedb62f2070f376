// merge.cu -- the element-wise sum of several arrays of one shape (residual connections).
//
//   out[i] = x_0[i] + x_1[i] + ... + x_{count-1}[i]     added in input order, as the NumPy path does
// The inputs are `count` contiguous arrays of n elements, passed as a table of their addresses
// (unsigned long long, device pointers on the GPU); out has n elements. The backward pass needs
// no kernel: every input's gradient is dout itself. (Concatenation is a copy done by the array
// module.)
//
//   add_forward  v1: grid-stride loop, one element per thread per step, the count inputs summed in order

template <typename T>
__global__ void add_forward(const unsigned long long* __restrict__ inputs,  // (count,) addresses of (n,) arrays
                            int count, T* __restrict__ out, int n) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned int)n; i += blockDim.x * gridDim.x) {
        T sum = reinterpret_cast<const T*>(inputs[0])[i];
        for (int k = 1; k < count; k++) sum += reinterpret_cast<const T*>(inputs[k])[i];
        out[i] = sum;
    }
}

// Explicit instantiations, so that `nvcc --cubin` compiles (and reports registers for) every kernel.
template __global__ void add_forward<float>(const unsigned long long*, int, float*, int);
template __global__ void add_forward<double>(const unsigned long long*, int, double*, int);
