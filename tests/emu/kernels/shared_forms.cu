// Test kernels for the forms a __shared__ declaration can take.
//
// emu_test::static_forms   __align__, static, several declarators in one declaration, volatile,
//                          2-D arrays, and a per-instantiation array inside a device template;
//                          a C++-linkage kernel in a namespace
// dynamic_forms            extern __shared__ with __align__ reinterpreted as float, and as rows
// work                     a kernel named like one of the emulator's own functions

#include "shared_helpers.cuh"

namespace emu_test {

__global__ void static_forms(const float* x, float* out) {
    __shared__ __align__(16) float aligned[8];
    static __shared__ int counter;
    __shared__ float first[4], second[4];
    volatile __shared__ float flag;
    __shared__ float grid2[3][5];
    int t = threadIdx.x;  // launched with 8 threads
    aligned[t] = x[t];
    if (t < 4) first[t] = 10.0f * t;
    if (t >= 4) second[t - 4] = 100.0f * t;
    if (t == 0) {
        counter = 0;
        flag = 3.0f;
    }
    if (t < 3) {
        for (int c = 0; c < 5; c++) grid2[t][c] = t * 5 + c;
    }
    __syncthreads();
    atomicAdd(&counter, 1);
    __syncthreads();
    float* four = shared_slots<4>();
    float* eight = shared_slots<8>();
    if (t < 4) four[t] = 1.0f;
    eight[t] = 2.0f;
    __syncthreads();
    out[0 * 8 + t] = aligned[7 - t];
    out[1 * 8 + t] = (float)counter;
    out[2 * 8 + t] = t < 4 ? first[t] : second[t - 4];
    out[3 * 8 + t] = flag;
    out[4 * 8 + t] = grid2[t % 3][t % 5];
    out[5 * 8 + t] = (t < 4 ? four[t] : 0.0f) + eight[t];
    out[6 * 8 + t] = (float)(((unsigned long long)aligned) % 16) + (four != eight ? 0.0f : 100.0f);
}

}  // namespace emu_test

extern "C" __global__ void dynamic_forms(float* out, int columns) {
    extern __shared__ __align__(16) unsigned char raw[];
    extern __shared__ float rows[][8];
    float* as_float = reinterpret_cast<float*>(raw);
    int t = threadIdx.x;
    as_float[t] = (float)t;
    __syncthreads();
    out[t] = rows[t / columns][t % columns] + (float)(((unsigned long long)raw) % 16);
}

extern "C" __global__ void work(float* out) { out[threadIdx.x] = 1.0f; }
