// dropout.cu -- inverted dropout whose mask is recomputed from the seed, never stored.
//
//   out[i] = in[i] * (u_i >= rate ? scale : 0),  scale = 1 / (1 - rate) rounded to T
// with u_i element i of the uniform stream of `seed` (philox.cuh; bit-identical to
// dlcore/ops/random.py `uniform(seed, n)`), so the mask equals the NumPy path's. Forward
// applies it to x, backward to dout with the same seed and rate.
// Layout: in and out are n contiguous elements (any shape, C order).
//
//   dropout_apply  v1 grid-stride loop over groups of 4 elements, one Philox call per group;
//                     a float4 (float) or two double2 (double) loads and stores per group where
//                     both arrays are 16-byte aligned, element by element otherwise and at the tail

#include "philox.cuh"

namespace dropout_detail {

__device__ __forceinline__ void load_quad(const float* p, float v[4]) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
}

__device__ __forceinline__ void load_quad(const double* p, double v[4]) {
    const double2 a = reinterpret_cast<const double2*>(p)[0], b = reinterpret_cast<const double2*>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
}

__device__ __forceinline__ void store_quad(float* p, const float v[4]) {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}

__device__ __forceinline__ void store_quad(double* p, const double v[4]) {
    reinterpret_cast<double2*>(p)[0] = make_double2(v[0], v[1]);
    reinterpret_cast<double2*>(p)[1] = make_double2(v[2], v[3]);
}

}  // namespace dropout_detail

template <typename T>
__global__ void dropout_apply(const T* __restrict__ in,  // (n,)
                              T* __restrict__ out,       // (n,)
                              int n, unsigned long long seed, float rate, T scale) {
    const bool aligned = ((reinterpret_cast<unsigned long long>(in) | reinterpret_cast<unsigned long long>(out)) & 15) == 0;
    const unsigned int count = (unsigned int)n, groups = (count + 3u) / 4u;
    for (unsigned int group = blockIdx.x * blockDim.x + threadIdx.x; group < groups; group += blockDim.x * gridDim.x) {
        const uint4 words = philox_stream_block(seed, group);  // uniforms of elements 4*group .. 4*group + 3
        const T multiplier[4] = {philox_uniform(words.x) >= rate ? scale : T(0), philox_uniform(words.y) >= rate ? scale : T(0),
                                 philox_uniform(words.z) >= rate ? scale : T(0), philox_uniform(words.w) >= rate ? scale : T(0)};
        const unsigned int first = 4u * group;
        if (aligned && first + 4u <= count) {
            T values[4];
            dropout_detail::load_quad(in + first, values);
#pragma unroll
            for (int k = 0; k < 4; ++k) values[k] *= multiplier[k];
            dropout_detail::store_quad(out + first, values);
        } else {
            for (unsigned int k = 0; k < 4u && first + k < count; ++k) out[first + k] = in[first + k] * multiplier[k];
        }
    }
}

// Explicit instantiations, so that `nvcc --cubin` compiles (and reports registers for) every kernel.
template __global__ void dropout_apply<float>(const float*, float*, int, unsigned long long, float, float);
template __global__ void dropout_apply<double>(const double*, double*, int, unsigned long long, float, double);
