// Helper for shared_forms.cu: an included header with a __shared__ array in a device template.
#pragma once

template <int N>
__device__ float* shared_slots() {
    __shared__ float slots[N];  // one array per instantiation, as on a GPU
    return slots;
}
