// common.cuh -- device helpers shared by the kernel files (no host code, no standard headers).
//
// Warp reductions: every one of the 32 lanes of the warp must call; every lane gets the result
// (xor butterflies, so all lanes hold bitwise the same value).
//   warp_sum(v)              sum over the warp
//   warp_max(v)              maximum over the warp (max(): a NaN lane is ignored unless all are NaN)
// Block reductions: 1-D blocks whose size is a multiple of 32; every thread must call and gets
// the result; `scratch` is a __shared__ T[32] that is free for reuse when the call returns.
//   block_sum(v, scratch)    sum over the block: warp sums, then each warp sums the warp sums
#pragma once

constexpr unsigned FULL_WARP_MASK = 0xffffffffu;

template <class T>
__device__ __forceinline__ T warp_sum(T value) {
#pragma unroll
    for (int lane_mask = 16; lane_mask > 0; lane_mask >>= 1) {
        value += __shfl_xor_sync(FULL_WARP_MASK, value, lane_mask);
    }
    return value;
}

template <class T>
__device__ __forceinline__ T warp_max(T value) {
#pragma unroll
    for (int lane_mask = 16; lane_mask > 0; lane_mask >>= 1) {
        value = max(value, __shfl_xor_sync(FULL_WARP_MASK, value, lane_mask));
    }
    return value;
}

template <class T>
__device__ __forceinline__ T block_sum(T value, T* scratch) {
    const int lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
    const int warps = blockDim.x / warpSize;
    value = warp_sum(value);
    if (lane == 0) scratch[warp] = value;
    __syncthreads();
    value = warp_sum(lane < warps ? scratch[lane] : T(0));  // every warp adds the same values
    __syncthreads();  // all warps have read scratch: the caller may reuse it
    return value;
}
