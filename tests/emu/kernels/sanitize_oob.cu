// Deliberate out-of-bounds reads, for the sanitizer tests (ASan must report the .cu line).
//
// read_past_end      thread n reads x[n], one past the end of a global array
// shared_past_end    the last thread reads buffer[64] of a 64-element __shared__ array

extern "C" __global__ void read_past_end(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) y[i < n ? i : 0] = x[i];
}

extern "C" __global__ void shared_past_end(float* y) {
    __shared__ float buffer[64];
    buffer[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    y[threadIdx.x] = buffer[threadIdx.x + 1];
}
