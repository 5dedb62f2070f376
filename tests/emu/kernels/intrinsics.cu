// Test kernels for the CUDA built-ins the emulator provides, each checked against NumPy.
//
// warp_shuffles      __shfl_sync / _up / _down / _xor on ints with a given width
// shuffle_doubles    64-bit values through __shfl_xor_sync
// warp_votes         __ballot_sync, __any_sync, __all_sync, __reduce_{add,min,max}_sync
// block_votes        __syncthreads_count / _and / _or
// atomics            atomicAdd/Sub/Max/Min/CAS/Exch/Inc/And/Or/Xor on int, unsigned, ull, float, double
// integer_intrinsics __popc __clz __ffs __brev __umulhi __mul24 __float_as_int and friends
// float_math         expf logf sqrtf rsqrtf tanhf powf fmaxf ... and the __ intrinsics
// swap_float4        float4 loads through __ldg and make_float4

extern "C" __global__ void warp_shuffles(const int* in, int* out, int width) {
    int t = blockIdx.x * blockDim.x + threadIdx.x, n = gridDim.x * blockDim.x;
    int v = in[t];
    out[0 * n + t] = __shfl_sync(0xffffffffu, v, 3, width);
    out[1 * n + t] = __shfl_up_sync(0xffffffffu, v, 2, width);
    out[2 * n + t] = __shfl_down_sync(0xffffffffu, v, 5, width);
    out[3 * n + t] = __shfl_xor_sync(0xffffffffu, v, 6, width);
}

extern "C" __global__ void shuffle_doubles(const double* in, double* out) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    out[t] = __shfl_xor_sync(0xffffffffu, in[t], 1);
}

extern "C" __global__ void warp_votes(const int* predicate, unsigned int* out) {
    int t = blockIdx.x * blockDim.x + threadIdx.x, n = gridDim.x * blockDim.x;
    int p = predicate[t];
    out[0 * n + t] = __ballot_sync(0xffffffffu, p);
    out[1 * n + t] = __any_sync(0xffffffffu, p);
    out[2 * n + t] = __all_sync(0xffffffffu, p);
    out[3 * n + t] = __reduce_add_sync(0xffffffffu, (unsigned int)p);
    out[4 * n + t] = (unsigned int)__reduce_min_sync(0xffffffffu, p - 5);
    out[5 * n + t] = __reduce_max_sync(0xffffffffu, (unsigned int)p);
}

extern "C" __global__ void block_votes(const int* predicate, int* out) {
    int p = predicate[threadIdx.x];
    int count = __syncthreads_count(p);
    int all = __syncthreads_and(p);
    int any = __syncthreads_or(p);
    out[3 * threadIdx.x + 0] = count;
    out[3 * threadIdx.x + 1] = all;
    out[3 * threadIdx.x + 2] = any;
}

extern "C" __global__ void atomics(int* ints, unsigned int* uints, unsigned long long* ulls, float* floats, double* doubles) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    atomicAdd(&ints[0], 1);
    atomicSub(&ints[1], 2);
    atomicMax(&ints[2], t);
    atomicMin(&ints[3], -t);
    atomicAdd(&uints[0], 3u);
    atomicInc(&uints[1], 9u);  // wraps to 0 after 9
    atomicOr(&uints[2], 1u << (t % 32));
    atomicAnd(&uints[3], ~(1u << (t % 16)));
    atomicXor(&uints[4], 1u);
    atomicAdd(&ulls[0], 1ull << 33);
    atomicAdd(&floats[0], 0.5f);
    atomicAdd(&doubles[0], 0.25);
    atomicExch(&floats[1], 7.0f);
    int old = atomicCAS(&ints[4], -1, t);  // exactly one thread wins
    if (old == -1) atomicAdd(&ints[5], 1);
}

extern "C" __global__ void integer_intrinsics(const unsigned int* x, unsigned int* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned int v = x[i];
    out[0 * n + i] = __popc(v);
    out[1 * n + i] = __clz((int)v);
    out[2 * n + i] = __ffs((int)v);
    out[3 * n + i] = __brev(v);
    out[4 * n + i] = __umulhi(v, 0x9E3779B9u);
    out[5 * n + i] = (unsigned int)__mul24((int)(v & 0xFFFu), 1000);
    out[6 * n + i] = (unsigned int)__float_as_int(__int_as_float((int)v));
    out[7 * n + i] = __float_as_uint(__uint_as_float(v)) ^ 1u;
    out[8 * n + i] = min(v, 1000u) + (unsigned int)max((int)(v & 7u), 3);
}

extern "C" __global__ void float_math(const float* x, float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = x[i], a = fabsf(v) + 0.5f;
    out[0 * n + i] = expf(v);
    out[1 * n + i] = logf(a);
    out[2 * n + i] = sqrtf(a);
    out[3 * n + i] = rsqrtf(a);
    out[4 * n + i] = tanhf(v);
    out[5 * n + i] = powf(a, 1.5f);
    out[6 * n + i] = fmaxf(v, 0.0f) + fminf(v, 0.0f);
    out[7 * n + i] = floorf(v) + ceilf(v);
    out[8 * n + i] = __expf(v) + __logf(a);
    out[9 * n + i] = __fdividef(v, a);
    out[10 * n + i] = __fmaf_rn(v, a, 1.0f) + __fmul_rn(v, 2.0f) + __fadd_rn(v, 1.0f);
    out[11 * n + i] = (float)(exp((double)v) + log((double)a) + sqrt((double)a) + tanh((double)v));
    out[12 * n + i] = max(v, 0.25f) + min(v, -0.25f);
    out[13 * n + i] = v > 0.0f ? INFINITY : __int_as_float(0x7fffffff);
}

extern "C" __global__ void swap_float4(const float4* __restrict__ x, float4* __restrict__ y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float4 v = __ldg(&x[i]);
        y[i] = make_float4(v.w, v.z, v.y, v.x);
    }
}
