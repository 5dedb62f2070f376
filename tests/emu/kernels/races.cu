// Deliberately broken kernels: the emulator must expose each bug.
//
// shift_missing_sync       y[i] = x[i-1] within a block through shared memory, but no __syncthreads
//                          between the write and the read: right in forward order only
// barrier_in_branch        __syncthreads inside `if (threadIdx.x < 16)`: the others exit
// two_barriers             odd and even threads wait at different __syncthreads
// shuffle_beside_barrier   lanes 0-15 shuffle with a full mask while lanes 16-31 wait at a barrier
// warp_masks_disagree      lanes 0-15 __syncwarp(0x0000ffff), lanes 16-31 __syncwarp(0xffffffff)
// lane_outside_mask        every lane calls __syncwarp(1): lanes 1-31 are not in the mask
// trap                     thread 5 calls __trap()

extern "C" __global__ void shift_missing_sync(const float* x, float* y, int n) {
    __shared__ float buffer[256];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    buffer[threadIdx.x] = i < n ? x[i] : 0.0f;
    // missing: __syncthreads();
    if (i < n) y[i] = threadIdx.x > 0 ? buffer[threadIdx.x - 1] : 0.0f;
}

extern "C" __global__ void barrier_in_branch(float* y) {
    if (threadIdx.x < 16) __syncthreads();
    y[threadIdx.x] = 1.0f;
}

extern "C" __global__ void two_barriers(float* y) {
    if (threadIdx.x % 2) {
        __syncthreads();
        y[threadIdx.x] = 1.0f;
    } else {
        __syncthreads();
        y[threadIdx.x] = 2.0f;
    }
}

extern "C" __global__ void shuffle_beside_barrier(float* y) {
    float v = threadIdx.x;
    if (threadIdx.x % 32 < 16) {
        v = __shfl_sync(0xffffffffu, v, 0);
    } else {
        __syncthreads();
    }
    y[threadIdx.x] = v;
}

extern "C" __global__ void warp_masks_disagree(float* y) {
    if (threadIdx.x < 16) {
        __syncwarp(0x0000ffffu);
    } else {
        __syncwarp(0xffffffffu);
    }
    y[threadIdx.x] = 1.0f;
}

extern "C" __global__ void lane_outside_mask(float* y) {
    __syncwarp(1u);
    y[threadIdx.x] = 1.0f;
}

extern "C" __global__ void trap(float* y) {
    if (threadIdx.x == 5) __trap();
    y[threadIdx.x] = 1.0f;
}
