// Test kernels of the emulator: the patterns the project's kernels are built from.
//
// saxpy_grid_stride    y = a*x + y with a grid-stride loop
// block_sum            warp shuffles + __shared__ + __syncthreads + float atomicAdd: out += sum(x)
// sgemm_tiled          C = A @ B, row-major, 16x16 tiles in 2-D shared arrays (padded by one column)
// reverse_in_block     each block reverses its slice of x through dynamic shared memory
// scale<T>             x *= a, a template exported through name expressions
// transpose<T, TILE>   out = in^T through a TILE x (TILE + 1) shared tile sized by template params
// atomic_sum           every thread does atomicAdd(out, x[i]): order-dependent float rounding
// read_before_write    reads shared memory nobody wrote (the emulator fills it with NaN)
// big_static_shared    32 KiB of static shared memory (with 32 KiB dynamic: over the 48 KiB limit)
// no_arguments         a kernel without parameters

extern "C" __global__ void saxpy_grid_stride(const float* __restrict__ x, float* __restrict__ y, float a, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        y[i] = a * x[i] + y[i];
    }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}

extern "C" __global__ void __launch_bounds__(256) block_sum(const float* __restrict__ x, float* out, int n) {
    __shared__ float warp_sums[32];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
    float v = warp_sum(i < n ? x[i] : 0.0f);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {  // only the first warp shuffles now: the others have gone
        v = warp_sum(lane < (int)(blockDim.x / warpSize) ? warp_sums[lane] : 0.0f);
        if (lane == 0) atomicAdd(out, v);
    }
}

#define SGEMM_TILE 16
extern "C" __global__ void sgemm_tiled(const float* A, const float* B, float* C, int M, int N, int K) {
    __shared__ float As[SGEMM_TILE][SGEMM_TILE + 1];
    __shared__ float Bs[SGEMM_TILE][SGEMM_TILE + 1];
    int row = blockIdx.y * SGEMM_TILE + threadIdx.y;
    int col = blockIdx.x * SGEMM_TILE + threadIdx.x;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += SGEMM_TILE) {
        int ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
        As[threadIdx.y][threadIdx.x] = (row < M && ka < K) ? A[row * K + ka] : 0.0f;
        Bs[threadIdx.y][threadIdx.x] = (col < N && kb < K) ? B[kb * N + col] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int k = 0; k < SGEMM_TILE; ++k) acc = fmaf(As[threadIdx.y][k], Bs[k][threadIdx.x], acc);
        __syncthreads();
    }
    if (row < M && col < N) C[row * N + col] = acc;
}

extern "C" __global__ void reverse_in_block(const float* x, float* y, int n) {
    extern __shared__ float buffer[];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    buffer[threadIdx.x] = i < n ? x[i] : 0.0f;
    __syncthreads();
    int j = blockIdx.x * blockDim.x + (blockDim.x - 1 - threadIdx.x);
    if (j < n) y[j] = buffer[threadIdx.x];
}

template <typename T>
__global__ void scale(T* x, T a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= a;
}

template <typename T, int TILE>
__global__ void transpose(const T* __restrict__ in, T* __restrict__ out, int rows, int cols) {
    __shared__ T tile[TILE][TILE + 1];
    int x = blockIdx.x * TILE + threadIdx.x, y = blockIdx.y * TILE + threadIdx.y;
    if (x < cols && y < rows) tile[threadIdx.y][threadIdx.x] = in[y * cols + x];
    __syncthreads();
    x = blockIdx.y * TILE + threadIdx.x;
    y = blockIdx.x * TILE + threadIdx.y;
    if (x < rows && y < cols) out[y * rows + x] = tile[threadIdx.x][threadIdx.y];
}

extern "C" __global__ void atomic_sum(const float* x, float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) atomicAdd(out, x[i]);
}

extern "C" __global__ void read_before_write(float* out) {
    __shared__ float never_written[64];
    out[threadIdx.x] = never_written[threadIdx.x];
}

extern "C" __global__ void big_static_shared(float* out) {
    __shared__ float big[8192];  // 32 KiB
    big[threadIdx.x] = threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = big[blockDim.x - 1 - threadIdx.x];
}

extern "C" __global__ void no_arguments() {}
