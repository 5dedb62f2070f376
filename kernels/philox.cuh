// philox.cuh -- Philox4x32-10 counter-based random numbers (Salmon et al., SC'11; Random123),
// bit-identical to dlcore/ops/random.py: element i of the stream of a 64-bit seed is
//   counter = (i >> 2 low 32 bits, i >> 34, 0, 0),  key = (seed low 32 bits, seed >> 32)
//   word    = philox4x32_10(counter, key)[i & 3]
//   u       = (word >> 8) * 2^-24                  (float in [0, 1), exact)
// so one Philox call yields the uniforms of the four elements 4b .. 4b+3.
#pragma once

constexpr unsigned int PHILOX_M0 = 0xD2511F53u, PHILOX_M1 = 0xCD9E8D57u;  // round multipliers
constexpr unsigned int PHILOX_W0 = 0x9E3779B9u, PHILOX_W1 = 0xBB67AE85u;  // key increments (golden ratio, sqrt(3) - 1)

// Ten rounds; with (hi, lo) the halves of the 64-bit products hi0:lo0 = M0*c0, hi1:lo1 = M1*c2:
//   (c0, c1, c2, c3) <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0),  key += (W0, W1) between rounds.
__device__ __forceinline__ uint4 philox4x32_10(uint4 counter, uint2 key) {
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            key.x += PHILOX_W0;
            key.y += PHILOX_W1;
        }
        const unsigned int hi0 = __umulhi(PHILOX_M0, counter.x), lo0 = PHILOX_M0 * counter.x;
        const unsigned int hi1 = __umulhi(PHILOX_M1, counter.z), lo1 = PHILOX_M1 * counter.z;
        counter = make_uint4(hi1 ^ counter.y ^ key.x, lo1, hi0 ^ counter.w ^ key.y, lo0);
    }
    return counter;
}

// The four words of stream block `block` (elements 4*block .. 4*block + 3) of `seed`.
__device__ __forceinline__ uint4 philox_stream_block(unsigned long long seed, unsigned long long block) {
    const uint4 counter = make_uint4((unsigned int)block, (unsigned int)(block >> 32), 0u, 0u);
    const uint2 key = make_uint2((unsigned int)seed, (unsigned int)(seed >> 32));
    return philox4x32_10(counter, key);
}

// A word's uniform in [0, 1): its top 24 bits times 2^-24 (exact in float).
__device__ __forceinline__ float philox_uniform(unsigned int word) {
    return (float)(word >> 8) * 5.9604644775390625e-08f;  // 2^-24
}
