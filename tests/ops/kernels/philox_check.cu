// Test kernels for kernels/philox.cuh, run on the emulator by tests/ops/test_dropout.py.
//
// philox_blocks   out[i] = philox4x32_10(counters[i], keys[i]): the raw generator, for
//                 Random123's known-answer vectors
// uniform_stream  out[i] = element offset + i of the uniform stream of seed, as
//                 dlcore.ops.random.uniform(seed, n, offset)

#include "../../../kernels/philox.cuh"

extern "C" __global__ void philox_blocks(const unsigned int* counters,  // (n, 4)
                                         const unsigned int* keys,      // (n, 2)
                                         unsigned int* out,             // (n, 4)
                                         int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const uint4 words = philox4x32_10(make_uint4(counters[4 * i], counters[4 * i + 1], counters[4 * i + 2], counters[4 * i + 3]),
                                      make_uint2(keys[2 * i], keys[2 * i + 1]));
    out[4 * i] = words.x;
    out[4 * i + 1] = words.y;
    out[4 * i + 2] = words.z;
    out[4 * i + 3] = words.w;
}

extern "C" __global__ void uniform_stream(float* out,  // (n,)
                                          int n, unsigned long long seed, unsigned long long offset) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const unsigned long long element = offset + i;
    const uint4 words = philox_stream_block(seed, element >> 2);
    const unsigned int lane = (unsigned int)(element & 3);
    out[i] = philox_uniform(lane == 0 ? words.x : lane == 1 ? words.y : lane == 2 ? words.z : words.w);
}
