// cuda_emu.h -- runs the CUDA C kernel dialect on a CPU.
//
// dlcore.emu force-includes this header when g++ compiles a kernel file (C++20) into a
// shared library, after rewriting each `__shared__` declaration into a call of
// shared_variable() / dynamic_shared() below and appending the table of kernels
// (dlcore_emu_kernel_table). Python launches kernels through the extern "C" functions at the
// end of this file.
//
// Execution model
//   * A launch runs its blocks on a persistent pool of OS threads (one pool per library,
//     created on first use); the calling thread works too. Blocks are taken in order from an
//     atomic counter, so with one worker they run in order and float atomics are reproducible.
//   * Each CUDA thread of a block runs on a fiber (its own stack) of the worker that runs the
//     block. A thread runs until it finishes or reaches __syncthreads or a warp operation; a
//     "pass" runs every runnable thread once, in the launch's thread order (forward, reverse or
//     a seeded shuffle per pass); then the scheduler releases barriers and computes warp-op
//     results. Racy kernels (a missing __syncthreads or __syncwarp) give different results
//     under different orders.
//   * Shared memory is filled with 0xFF bytes (NaN for floats) at the start of every block.
//   * Misuse a GPU would hang on or make undefined (threads at different __syncthreads,
//     threads exiting while others wait, warp ops with mismatched masks) stops the launch and
//     comes back to Python as an error naming the kernel, the block and the threads.
#pragma once

#include <math.h>  // C math plus the float overloads of std:: in the global namespace, as CUDA has

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <source_location>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
// Fibers switch with a few lines of assembly on x86-64 and with ucontext elsewhere (or when
// DLCORE_EMU_UCONTEXT is defined; ucontext also saves the signal mask, a system call per switch).
#if defined(__x86_64__) && !defined(DLCORE_EMU_UCONTEXT)
#define DLCORE_EMU_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

#define DLCORE_EMU 1

// ------------------------------------------------------------------ qualifiers
#define __global__
#define __device__
#define __host__
#define __constant__
#define __grid_constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

// ------------------------------------------------------------------ vector types
struct uint3 { unsigned int x, y, z; };
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return {x, y, z}; }
};
struct alignas(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct int3 { int x, y, z; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned int x, y; };
struct alignas(16) uint4 { unsigned int x, y, z, w; };
struct alignas(16) double2 { double x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int3 make_int3(int x, int y, int z) { return {x, y, z}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned int x, unsigned int y) { return {x, y}; }
inline uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) { return {x, y, z}; }
inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }

static constexpr int warpSize = 32;

namespace dlcore_emu {

// ------------------------------------------------------------------ launch state
enum class State : unsigned char { NotStarted, Runnable, AtBarrier, AtWarp, Done };
enum class WarpOp : unsigned char {
  Sync, Shfl, ShflUp, ShflDown, ShflXor, Ballot, Any, All, ReduceAdd, ReduceMin, ReduceMax
};
enum ErrorCode : int { kOk = 0, kKernelError = 1, kSharedMemoryLimit = 2 };
enum Order : int { kForward = 0, kReverse = 1, kShuffled = 2 };

#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kStackBytes = 1024 * 1024;  // ASan frames are several times larger
#else
constexpr std::size_t kStackBytes = 256 * 1024;
#endif
constexpr std::size_t kGuardBytes = 4096;

struct Fiber;

struct Thread {  // one CUDA thread of the block being run
  uint3 idx;
  unsigned lin = 0;
  State state = State::Done;
  Fiber* fiber = nullptr;
  std::source_location site;  // where it waits (barrier or warp op)
  int predicate = 0, barrier_result = 0;
  WarpOp op = WarpOp::Sync;
  unsigned mask = 0;
  int arg = 0, width = 32;
  std::uint64_t value = 0, result = 0;
};

struct Context {  // a suspended stack: the scheduler's or a fiber's
#if defined(DLCORE_EMU_ASM_SWITCH)
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
#if defined(__SANITIZE_ADDRESS__)
  void* fake_stack = nullptr;
  const void* bottom = nullptr;
  std::size_t size = 0;
#endif
};

struct Fiber {  // a stack that runs CUDA threads, one at a time
  Context context;
  unsigned char* stack = nullptr;  // lowest address (guard page below the usable part)
  std::size_t top_offset = 0;      // staggers stack tops so that they do not share cache sets
  Thread* thread = nullptr;
};

struct Options {  // mirrors dlcore.emu.launch._LaunchOptions
  int order;
  int workers;
  std::uint64_t seed;
};

struct Launch {
  const char* kernel = "";
  void (*body)(void* args) = nullptr;
  void* args = nullptr;
  dim3 grid, block;
  std::uint64_t nblocks = 0;
  std::size_t dyn_smem = 0, smem_limit = 0;
  Options options{};
  std::atomic<std::uint64_t> next_block{0};
  std::atomic<bool> failed{false};
  std::atomic<std::size_t> static_smem{0};
  std::mutex error_mutex;
  int error_code = kOk;
  std::string error;
};

struct Runner {  // per OS thread: runs one block at a time
  Launch* launch = nullptr;
  dim3 block_dim, grid_dim;
  uint3 block_idx{0, 0, 0};
  unsigned nthreads = 0, cursor = 0;
  std::vector<Thread> threads;
  std::vector<unsigned> perm;
  std::vector<Fiber*> fibers, free_fibers;
  Fiber* current = nullptr;  // the fiber running now; nullptr while the scheduler runs
  Context scheduler;
  std::uint64_t rng = 0;
  std::uint64_t block_epoch = 0;  // changes every block: shared variables re-poison on first use
  std::size_t static_smem = 0;
  unsigned char* dyn_smem = nullptr;
  std::size_t dyn_bytes = 0;
  int error_code = kOk;
  std::string error;
  ~Runner() {
    for (Fiber* f : fibers) {
      munmap(f->stack, kStackBytes);
      delete f;
    }
    release_dynamic_shared();
  }
  void release_dynamic_shared() {
    if (dyn_smem) ::operator delete(dyn_smem, std::align_val_t(128));
    dyn_smem = nullptr;
    dyn_bytes = 0;
  }
};

inline thread_local Runner* tl_runner = nullptr;
inline thread_local Thread* tl_thread = nullptr;

// ------------------------------------------------------------------ context switching
#if defined(DLCORE_EMU_ASM_SWITCH)
extern "C" void dlcore_emu_swap(void** save_sp, void* load_sp);
#endif
[[noreturn]] inline void fiber_main();

inline void reset_fiber(Fiber* f) {  // a fresh context that starts in fiber_main
  Context& c = f->context;
#if defined(__SANITIZE_ADDRESS__)
  __asan_unpoison_memory_region(f->stack + kGuardBytes, kStackBytes - kGuardBytes);
  c.bottom = f->stack + kGuardBytes;
  c.size = kStackBytes - kGuardBytes;
#endif
#if defined(DLCORE_EMU_ASM_SWITCH)
  // `ret` pops fiber_main with rsp = top - 8, as after a call; the zero above it ends backtraces.
  auto top = (reinterpret_cast<std::uintptr_t>(f->stack) + kStackBytes - f->top_offset) & ~std::uintptr_t(15);
  auto* sp = reinterpret_cast<std::uint64_t*>(top - 16);
  sp[1] = 0;
  sp[0] = reinterpret_cast<std::uint64_t>(&fiber_main);
  for (int i = 1; i <= 6; i++) sp[-i] = 0;  // rbp rbx r12-r15
  c.sp = &sp[-6];
#else
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = f->stack + kGuardBytes;
  c.uc.uc_stack.ss_size = kStackBytes - kGuardBytes - f->top_offset;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, reinterpret_cast<void (*)()>(&fiber_main), 0);
#endif
}

inline Fiber* new_fiber(Runner& r) {
  void* mem = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) return nullptr;
  mprotect(mem, kGuardBytes, PROT_NONE);  // a stack overflow faults instead of corrupting memory
  auto* f = new Fiber;
  f->stack = static_cast<unsigned char*>(mem);
  f->top_offset = r.fibers.size() * (4096 + 64) % (kStackBytes / 4);
  reset_fiber(f);
  r.fibers.push_back(f);
  return f;
}

// Suspends the running context `from` and resumes `to`, which belongs to fiber `next` (nullptr: the
// scheduler). Returns when something transfers back to `from`.
inline void transfer(Runner& r, Context& from, Context& to, Fiber* next) {
  r.current = next;
  tl_thread = next ? next->thread : nullptr;
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(&from.fake_stack, to.bottom, to.size);
#endif
#if defined(DLCORE_EMU_ASM_SWITCH)
  dlcore_emu_swap(&from.sp, to.sp);
#else
  swapcontext(&from.uc, &to.uc);
#endif
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(from.fake_stack, nullptr, nullptr);
#endif
}

// ------------------------------------------------------------------ errors
inline std::string format(const char* fmt, auto... values) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, values...);
  return buf;
}

inline std::string where(const std::source_location& s) {
  return format("%s:%u", s.file_name(), unsigned(s.line()));
}

inline std::string block_name(const Runner& r) {
  return format("kernel '%s' block (%u,%u,%u)", r.launch->kernel, r.block_idx.x, r.block_idx.y, r.block_idx.z);
}

// Stops the block from inside a CUDA thread: the scheduler abandons the block and reports.
[[noreturn]] inline void fail(int code, const std::string& message) {
  Runner& r = *tl_runner;
  if (r.error_code == kOk) {
    r.error_code = code;
    r.error = message;
  }
  transfer(r, r.current->context, r.scheduler, nullptr);  // never resumed: the block is abandoned
  __builtin_unreachable();
}

inline const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::Sync: return "__syncwarp";
    case WarpOp::Shfl: return "__shfl_sync";
    case WarpOp::ShflUp: return "__shfl_up_sync";
    case WarpOp::ShflDown: return "__shfl_down_sync";
    case WarpOp::ShflXor: return "__shfl_xor_sync";
    case WarpOp::Ballot: return "__ballot_sync";
    case WarpOp::Any: return "__any_sync";
    case WarpOp::All: return "__all_sync";
    case WarpOp::ReduceAdd: return "__reduce_add_sync";
    case WarpOp::ReduceMin: return "__reduce_min_sync";
    case WarpOp::ReduceMax: return "__reduce_max_sync";
  }
  return "warp op";
}

inline std::string what_threads_do(const Thread& t, bool plural) {
  switch (t.state) {
    case State::Done: return plural ? "have exited" : "has exited";
    case State::AtBarrier: return format("%s at __syncthreads (", plural ? "wait" : "waits") + where(t.site) + ")";
    case State::AtWarp:
      return format("%s at %s with mask 0x%08x (", plural ? "wait" : "waits", op_name(t.op), t.mask) +
             where(t.site) + ")";
    default: return plural ? "are runnable" : "is runnable";
  }
}

// "threads 0-31 wait at __syncthreads (k.cu:12); threads 32-63 have exited", by linear index.
inline std::string describe_threads(const Runner& r) {
  std::string out;
  unsigned groups = 0;
  for (unsigned i = 0; i < r.nthreads;) {
    std::string doing = what_threads_do(r.threads[i], true);
    unsigned j = i + 1;
    while (j < r.nthreads && what_threads_do(r.threads[j], true) == doing) j++;
    if (++groups > 6) {
      out += "; ...";
      break;
    }
    out += out.empty() ? "" : "; ";
    out += j - i == 1 ? format("thread %u ", i) + what_threads_do(r.threads[i], false)
                      : format("threads %u-%u ", i, j - 1) + doing;
    i = j;
  }
  if (r.block_dim.y * r.block_dim.z > 1) out += " (threads by linear index)";
  return out;
}

// ------------------------------------------------------------------ the per-block scheduler
inline void bind(Fiber* f, Thread* t) {
  f->thread = t;
  t->fiber = f;
  t->state = State::Runnable;
}

inline Fiber* take_fiber(Runner& r) {
  if (r.free_fibers.empty()) return new_fiber(r);
  Fiber* f = r.free_fibers.back();
  r.free_fibers.pop_back();
  return f;
}

// The fiber of the next thread to run in this pass, binding a free stack (the most recently freed
// first) to a thread that has not started; nullptr at the end of the pass or after an error.
inline Fiber* next_in_pass(Runner& r) {
  while (r.error_code == kOk && r.cursor < r.nthreads) {
    Thread& t = r.threads[r.perm[r.cursor++]];
    if (t.state == State::Runnable) return t.fiber;
    if (t.state == State::NotStarted) {
      Fiber* f = take_fiber(r);
      if (!f) {
        r.error_code = kKernelError;
        r.error = block_name(r) + ": out of memory for the stacks of the block's threads";
        return nullptr;
      }
      bind(f, &t);
      return f;
    }
  }
  return nullptr;
}

// Called on a fiber whose thread has blocked or finished: runs the next thread of the pass (on this
// very stack when this fiber is free and that thread has not started, so a kernel without barriers
// costs one switch per block), or goes back to the scheduler at the end of the pass. Returns when
// this fiber has a thread to run.
inline void switch_away(Runner& r, Fiber* self) {
  Fiber* next = next_in_pass(r);
  if (next == self) {
    tl_thread = self->thread;
    return;
  }
  transfer(r, self->context, next ? next->context : r.scheduler, next);
}

// Runs CUDA threads on this fiber forever; a fiber never leaves the worker that created it.
[[noreturn]] inline void fiber_main() {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  Runner& r = *tl_runner;
  Fiber* self = r.current;
  for (;;) {
    Thread* t = self->thread;
    r.launch->body(r.launch->args);
    t->state = State::Done;
    t->fiber = nullptr;
    self->thread = nullptr;
    r.free_fibers.push_back(self);
    switch_away(r, self);
  }
}

inline std::uint64_t next_random(std::uint64_t& s) {  // splitmix64
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline void order_threads(Runner& r) {
  unsigned n = r.nthreads;
  if (r.launch->options.order == kShuffled) {
    for (unsigned i = n - 1; i > 0; i--) std::swap(r.perm[i], r.perm[next_random(r.rng) % (i + 1)]);
  }
}

inline void run_pass(Runner& r) {  // on the scheduler: runs every runnable thread once
  order_threads(r);
  r.cursor = 0;
  if (Fiber* f = next_in_pass(r)) transfer(r, r.scheduler, f->context, f);
}

inline unsigned source_lane(const Thread& t, unsigned lane) {
  unsigned w = unsigned(t.width), base = lane / w * w;
  switch (t.op) {
    case WarpOp::Shfl: return base + (unsigned(t.arg) & (w - 1));
    case WarpOp::ShflUp: return lane - base >= unsigned(t.arg) ? lane - unsigned(t.arg) : lane;
    case WarpOp::ShflDown: return lane - base + unsigned(t.arg) < w ? lane + unsigned(t.arg) : lane;
    case WarpOp::ShflXor: {
      unsigned s = lane ^ unsigned(t.arg);
      return s < base + w ? s : lane;  // later groups are out of reach: own value
    }
    default: return lane;
  }
}

// Releases one warp's group of lanes that all called the same warp op with the same mask.
inline void finish_warp_group(Runner& r, unsigned w0, unsigned group) {
  Thread* lanes = &r.threads[w0];
  const Thread& first = lanes[__builtin_ctz(group)];
  // ballots and reductions over the group; reductions of 32-bit values (arg: 1 signed, 0 unsigned)
  unsigned votes = 0;
  std::int64_t sum = 0, lo = INT64_MAX, hi = INT64_MIN;
  for (unsigned g = group; g; g &= g - 1) {
    const Thread& t = lanes[__builtin_ctz(g)];
    if (t.value) votes |= 1u << __builtin_ctz(g);
    auto u = std::uint32_t(t.value);
    std::int64_t v = first.arg ? std::int64_t(std::int32_t(u)) : std::int64_t(u);
    sum += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  for (unsigned g = group; g; g &= g - 1) {
    unsigned lane = __builtin_ctz(g);
    Thread& t = lanes[lane];
    switch (t.op) {
      case WarpOp::Ballot: t.result = votes; break;
      case WarpOp::Any: t.result = votes != 0; break;
      case WarpOp::All: t.result = votes == group; break;
      case WarpOp::ReduceAdd: t.result = std::uint32_t(sum); break;
      case WarpOp::ReduceMin: t.result = std::uint32_t(lo); break;
      case WarpOp::ReduceMax: t.result = std::uint32_t(hi); break;
      case WarpOp::Sync: break;
      default: {  // shuffles: a lane outside the group has no defined value on a GPU: poison it
        unsigned src = source_lane(t, lane);
        t.result = (group >> src & 1) ? lanes[src].value : ~0ull;
      }
    }
    t.state = State::Runnable;
  }
}

// Releases every warp group whose named lanes have all arrived (exited lanes do not count), after
// checking that each group's lanes agree on the operation.
inline bool resolve_warps(Runner& r) {
  bool released = false;
  for (unsigned w0 = 0; w0 < r.nthreads; w0 += 32) {
    unsigned nlanes = std::min(32u, r.nthreads - w0), alive = 0, waiting = 0;
    for (unsigned i = 0; i < nlanes; i++) {
      State s = r.threads[w0 + i].state;
      alive |= unsigned(s != State::Done) << i;
      waiting |= unsigned(s == State::AtWarp) << i;
    }
    unsigned ready[32], nready = 0;
    for (unsigned pending = waiting; pending;) {
      const Thread& t = r.threads[w0 + __builtin_ctz(pending)];
      unsigned group = t.mask & waiting;
      pending &= ~group;
      if (t.mask & alive & ~waiting) continue;  // lanes named in the mask are still on their way
      for (unsigned g = group; g; g &= g - 1) {
        const Thread& o = r.threads[w0 + __builtin_ctz(g)];
        if (o.mask != t.mask || o.op != t.op || o.width != t.width) {
          r.error_code = kKernelError;
          r.error = block_name(r) + format(": warp %u lanes disagree on a warp operation ", w0 / 32) +
                    "(a CUDA GPU would give undefined results): " + describe_threads(r);
          return false;
        }
      }
      ready[nready++] = group;
    }
    for (unsigned k = 0; k < nready; k++) finish_warp_group(r, w0, ready[k]);
    released |= nready > 0;
  }
  return released;
}

inline bool same_site(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() &&
         (a.file_name() == b.file_name() || std::strcmp(a.file_name(), b.file_name()) == 0);
}

// All live threads wait at the same __syncthreads: release them. Otherwise report the deadlock.
inline void resolve_barrier(Runner& r) {
  const Thread* first = nullptr;
  int count = 0;
  bool divergent = false;
  for (unsigned i = 0; i < r.nthreads; i++) {
    const Thread& t = r.threads[i];
    if (t.state != State::AtBarrier) {
      divergent = true;  // exited, or stuck at a warp op whose lanes never all arrive
      continue;
    }
    if (!first) first = &t;
    divergent |= !same_site(t.site, first->site);
    count += t.predicate != 0;
  }
  if (divergent || !first) {
    r.error_code = kKernelError;
    r.error = block_name(r) + ": divergent barrier, the threads can never all meet: " + describe_threads(r);
    return;
  }
  for (unsigned i = 0; i < r.nthreads; i++) {
    r.threads[i].barrier_result = count;
    r.threads[i].state = State::Runnable;
  }
}

inline bool all_done(const Runner& r) {
  for (unsigned i = 0; i < r.nthreads; i++)
    if (r.threads[i].state != State::Done) return false;
  return true;
}

inline void abandon_block(Runner& r) {  // after an error: threads stay suspended; reclaim stacks
  r.free_fibers.clear();
  for (Fiber* f : r.fibers) {
    if (f->thread) reset_fiber(f);
    f->thread = nullptr;
    r.free_fibers.push_back(f);
  }
}

inline bool run_block(Runner& r, std::uint64_t b) {
  const dim3 g = r.grid_dim, bd = r.block_dim;
  r.block_idx = {unsigned(b % g.x), unsigned(b / g.x % g.y), unsigned(b / (std::uint64_t(g.x) * g.y))};
  r.block_epoch++;
  r.static_smem = 0;
  r.rng = r.launch->options.seed ^ (b * 0xD1B54A32D192ED03ull);
  if (r.dyn_bytes) std::memset(r.dyn_smem, 0xFF, r.dyn_bytes);
  for (unsigned i = 0; i < r.nthreads; i++) {
    Thread& t = r.threads[i];
    t.lin = i;
    t.idx = {i % bd.x, i / bd.x % bd.y, i / (bd.x * bd.y)};
    t.state = State::NotStarted;
    t.fiber = nullptr;
    r.perm[i] = r.launch->options.order == kReverse ? r.nthreads - 1 - i : i;
  }
  for (;;) {
    run_pass(r);
    if (r.error_code == kOk && !all_done(r) && !resolve_warps(r) && r.error_code == kOk) resolve_barrier(r);
    if (r.error_code != kOk) {
      abandon_block(r);
      return false;
    }
    if (all_done(r)) return true;
  }
}

// ------------------------------------------------------------------ shared memory
inline void add_static_shared(Runner& r, std::size_t bytes) {
  r.static_smem += bytes;
  std::size_t total = r.static_smem + r.dyn_bytes;
  if (total > r.launch->smem_limit)
    fail(kSharedMemoryLimit,
         format("kernel '%s' uses %zu bytes of static and %zu bytes of dynamic shared memory, %zu in all, "
                "over the %zu-byte limit of a block",
                r.launch->kernel, r.static_smem, r.dyn_bytes, total, r.launch->smem_limit));
}

// Storage of one `__shared__` declaration: per worker thread (a worker runs one block at a time),
// filled with 0xFF when the block first reaches the declaration. `Site` is a local class declared
// at the declaration, so every template instantiation gets its own variable.
template <class T, std::size_t Align, class Site>
inline T& shared_variable() {
  constexpr std::size_t align = Align > alignof(T) ? Align : alignof(T);
  struct Slot {
    void* p = nullptr;
    std::uint64_t epoch = 0;
    ~Slot() { ::operator delete(p, std::align_val_t(align)); }
  };
  static thread_local Slot slot;
  Runner& r = *tl_runner;
  if (slot.epoch != r.block_epoch) {
    if (!slot.p) slot.p = ::operator new(sizeof(T), std::align_val_t(align));
    std::memset(slot.p, 0xFF, sizeof(T));
    slot.epoch = r.block_epoch;
    add_static_shared(r, sizeof(T));
  }
  return *static_cast<T*>(slot.p);
}

inline void* dynamic_shared() { return tl_runner->dyn_smem; }

// ------------------------------------------------------------------ warp and block operations
inline std::uint64_t warp_op(WarpOp op, unsigned mask, std::uint64_t value, int arg, int width,
                             const std::source_location& site) {
  Thread* t = tl_thread;
  unsigned lane = t->lin % 32;
  if (!(mask >> lane & 1)) {
    std::string what = format(": thread %u calls %s with mask 0x%08x that leaves out its own lane %u (", t->lin,
                              op_name(op), mask, lane);
    fail(kKernelError, block_name(*tl_runner) + what + where(site) + ")");
  }
  if (width < 1 || width > 32 || (width & (width - 1))) {
    std::string what = format(": %s width %d is not a power of two in 1..32 (", op_name(op), width);
    fail(kKernelError, block_name(*tl_runner) + what + where(site) + ")");
  }
  t->op = op;
  t->mask = mask;
  t->value = value;
  t->arg = arg;
  t->width = width;
  t->site = site;
  t->state = State::AtWarp;
  switch_away(*tl_runner, tl_runner->current);
  return t->result;
}

inline int block_barrier(int predicate, const std::source_location& site) {
  Thread* t = tl_thread;
  t->predicate = predicate;
  t->site = site;
  t->state = State::AtBarrier;
  switch_away(*tl_runner, tl_runner->current);
  return t->barrier_result;
}

template <class T>
inline std::uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move values of up to 8 bytes");
  std::uint64_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  return u;
}
template <class T>
inline T from_bits(std::uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof(T));
  return v;
}

// ------------------------------------------------------------------ the worker pool
inline void work(Launch& L) {
  static thread_local Runner runner;
  Runner& r = runner;
  tl_runner = &r;
#if defined(__SANITIZE_ADDRESS__)
  if (!r.scheduler.bottom) {  // this thread's own stack, where the scheduler runs
    pthread_attr_t attr;
    void* addr = nullptr;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstack(&attr, &addr, &r.scheduler.size);
    pthread_attr_destroy(&attr);
    r.scheduler.bottom = addr;
  }
#endif
  r.launch = &L;
  r.block_dim = L.block;
  r.grid_dim = L.grid;
  r.nthreads = L.block.x * L.block.y * L.block.z;
  r.threads.resize(r.nthreads);
  r.perm.resize(r.nthreads);
  r.error_code = kOk;
  r.error.clear();
  r.release_dynamic_shared();
  if (L.dyn_smem) {  // exact size, so that ASan sees accesses past its end
    r.dyn_smem = static_cast<unsigned char*>(::operator new(L.dyn_smem, std::align_val_t(128)));
    r.dyn_bytes = L.dyn_smem;
  }
  std::size_t most_static = 0;
  while (!L.failed.load(std::memory_order_relaxed)) {
    std::uint64_t b = L.next_block.fetch_add(1, std::memory_order_relaxed);
    if (b >= L.nblocks) break;
    bool ok = run_block(r, b);
    most_static = std::max(most_static, r.static_smem);
    if (!ok) {
      std::lock_guard<std::mutex> lock(L.error_mutex);
      if (L.error_code == kOk) {
        L.error_code = r.error_code;
        L.error = r.error;
      }
      L.failed = true;
    }
  }
  std::size_t seen = L.static_smem.load();
  while (seen < most_static && !L.static_smem.compare_exchange_weak(seen, most_static)) {
  }
  r.release_dynamic_shared();
  r.launch = nullptr;
  tl_runner = nullptr;
  tl_thread = nullptr;
}

// Helper threads are created once and kept (never joined: the pool lives as long as the process).
struct Pool {
  std::mutex launch_mutex;  // one launch at a time per library
  std::mutex mutex;
  std::condition_variable wake, finished;
  std::uint64_t generation = 0;
  Launch* job = nullptr;
  unsigned helpers = 0, wanted = 0, busy = 0;

  void helper_loop(unsigned index) {
    std::uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      wake.wait(lock, [&] { return generation != seen; });
      seen = generation;
      if (index >= wanted) continue;
      Launch* L = job;
      lock.unlock();
      work(*L);
      lock.lock();
      if (--busy == 0) finished.notify_all();
    }
  }

  void run(Launch& L, unsigned workers) {
    std::lock_guard<std::mutex> one_launch(launch_mutex);
    unsigned extra = unsigned(std::min<std::uint64_t>(workers, L.nblocks)) - 1;
    {
      std::lock_guard<std::mutex> lock(mutex);
      while (helpers < extra) std::thread(&Pool::helper_loop, this, helpers++).detach();
      job = &L;
      wanted = busy = extra;
      generation++;
    }
    if (extra) wake.notify_all();
    work(L);
    std::unique_lock<std::mutex> lock(mutex);
    finished.wait(lock, [&] { return busy == 0; });
    job = nullptr;
  }
};

inline Pool* pool_instance = nullptr;

inline Pool& pool() {
  static std::once_flag once;
  std::call_once(once, [] {
    pool_instance = new Pool;
    // A forked child has none of the helper threads: give it a fresh, empty pool.
    pthread_atfork(nullptr, nullptr, [] { pool_instance = new Pool; });
  });
  return *pool_instance;
}

// ------------------------------------------------------------------ kernel table
template <class... A, std::size_t... I>
inline void call_unpacked(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
  kernel(*static_cast<std::remove_cv_t<A>*>(args[I])...);
}
template <class... A>
constexpr std::size_t arity(void (*)(A...)) { return sizeof...(A); }

template <auto Kernel>
void kernel_body(void* args) {
  call_unpacked(Kernel, static_cast<void**>(args), std::make_index_sequence<arity(Kernel)>{});
}

template <class T>
constexpr const char* value_type_name() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, bool>) return "bool";
  else if constexpr (std::is_same_v<U, char>) return "char";
  else if constexpr (std::is_same_v<U, signed char>) return "signed char";
  else if constexpr (std::is_same_v<U, unsigned char>) return "unsigned char";
  else if constexpr (std::is_same_v<U, short>) return "short";
  else if constexpr (std::is_same_v<U, unsigned short>) return "unsigned short";
  else if constexpr (std::is_same_v<U, int>) return "int";
  else if constexpr (std::is_same_v<U, unsigned int>) return "unsigned int";
  else if constexpr (std::is_same_v<U, long>) return "long";
  else if constexpr (std::is_same_v<U, unsigned long>) return "unsigned long";
  else if constexpr (std::is_same_v<U, long long>) return "long long";
  else if constexpr (std::is_same_v<U, unsigned long long>) return "unsigned long long";
  else if constexpr (std::is_same_v<U, float>) return "float";
  else if constexpr (std::is_same_v<U, double>) return "double";
  else return nullptr;
}

template <class T>
constexpr const char* element_type_name() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_void_v<U>) return "void";
  else if constexpr (std::is_same_v<U, float2>) return "float2";
  else if constexpr (std::is_same_v<U, float3>) return "float3";
  else if constexpr (std::is_same_v<U, float4>) return "float4";
  else if constexpr (std::is_same_v<U, int2>) return "int2";
  else if constexpr (std::is_same_v<U, int3>) return "int3";
  else if constexpr (std::is_same_v<U, int4>) return "int4";
  else if constexpr (std::is_same_v<U, uint2>) return "uint2";
  else if constexpr (std::is_same_v<U, uint3>) return "uint3";
  else if constexpr (std::is_same_v<U, uint4>) return "uint4";
  else if constexpr (std::is_same_v<U, double2>) return "double2";
  else return value_type_name<T>();
}

// C spelling of a kernel parameter type ("const float*", "int"); "?" where Python cannot pass it.
template <class T>
std::string parameter_type_name() {
  if constexpr (std::is_pointer_v<T>) {
    using E = std::remove_pointer_t<T>;
    const char* e = element_type_name<E>();
    if (!e) return "?";
    return std::string(std::is_const_v<E> ? "const " : "") + e + "*";
  } else {
    const char* v = value_type_name<T>();
    return v ? v : "?";
  }
}

template <class... A>
std::string signature_of(void (*)(A...)) {
  std::string s;
  ((s += parameter_type_name<A>(), s += ';'), ...);
  return s;
}

struct KernelEntry {
  const char* name;
  void (*body)(void* args);
  std::string (*signature)();
};

template <auto Kernel>
constexpr KernelEntry make_entry(const char* name) {
  return {name, &kernel_body<Kernel>, [] { return signature_of(Kernel); }};
}

}  // namespace dlcore_emu

// The kernels Python can launch, ending with a null entry. dlcore.emu appends the definition to the
// kernel file, at global scope so that names resolve as in the source:
//   const dlcore_emu::KernelEntry dlcore_emu_kernel_table[] = {
//       dlcore_emu::make_entry<&::relu>("relu"), ..., {nullptr, nullptr, nullptr}};
extern const dlcore_emu::KernelEntry dlcore_emu_kernel_table[];

// ------------------------------------------------------------------ CUDA built-in variables
#define threadIdx (static_cast<const uint3&>(::dlcore_emu::tl_thread->idx))
#define blockIdx (static_cast<const uint3&>(::dlcore_emu::tl_runner->block_idx))
#define blockDim (static_cast<const dim3&>(::dlcore_emu::tl_runner->block_dim))
#define gridDim (static_cast<const dim3&>(::dlcore_emu::tl_runner->grid_dim))

// ------------------------------------------------------------------ synchronisation
using dlcore_emu_site = std::source_location;
#define DLCORE_EMU_HERE dlcore_emu_site site = dlcore_emu_site::current()

inline void __syncthreads(DLCORE_EMU_HERE) { dlcore_emu::block_barrier(0, site); }
inline int __syncthreads_count(int p, DLCORE_EMU_HERE) { return dlcore_emu::block_barrier(p != 0, site); }
inline int __syncthreads_and(int p, DLCORE_EMU_HERE) {
  return dlcore_emu::block_barrier(p != 0, site) == int(blockDim.x * blockDim.y * blockDim.z);
}
inline int __syncthreads_or(int p, DLCORE_EMU_HERE) { return dlcore_emu::block_barrier(p != 0, site) != 0; }
inline void __syncwarp(unsigned mask = 0xffffffffu, DLCORE_EMU_HERE) {
  dlcore_emu::warp_op(dlcore_emu::WarpOp::Sync, mask, 0, 0, 32, site);
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __nanosleep(unsigned) {}
[[noreturn]] inline void __trap() {
  using namespace dlcore_emu;
  fail(kKernelError, block_name(*tl_runner) + format(": thread %u called __trap()", tl_thread->lin));
}

namespace dlcore_emu {
template <class T>
inline T shuffle(WarpOp op, unsigned mask, T var, int arg, int width, const std::source_location& site) {
  return from_bits<T>(warp_op(op, mask, to_bits(var), arg, width, site));
}
}  // namespace dlcore_emu

template <class T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize, DLCORE_EMU_HERE) {
  return dlcore_emu::shuffle(dlcore_emu::WarpOp::Shfl, mask, var, src_lane, width, site);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize, DLCORE_EMU_HERE) {
  return dlcore_emu::shuffle(dlcore_emu::WarpOp::ShflUp, mask, var, int(delta), width, site);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize, DLCORE_EMU_HERE) {
  return dlcore_emu::shuffle(dlcore_emu::WarpOp::ShflDown, mask, var, int(delta), width, site);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize, DLCORE_EMU_HERE) {
  return dlcore_emu::shuffle(dlcore_emu::WarpOp::ShflXor, mask, var, lane_mask, width, site);
}
inline unsigned __ballot_sync(unsigned mask, int predicate, DLCORE_EMU_HERE) {
  return unsigned(dlcore_emu::warp_op(dlcore_emu::WarpOp::Ballot, mask, predicate != 0, 0, 32, site));
}
inline int __any_sync(unsigned mask, int predicate, DLCORE_EMU_HERE) {
  return int(dlcore_emu::warp_op(dlcore_emu::WarpOp::Any, mask, predicate != 0, 0, 32, site));
}
inline int __all_sync(unsigned mask, int predicate, DLCORE_EMU_HERE) {
  return int(dlcore_emu::warp_op(dlcore_emu::WarpOp::All, mask, predicate != 0, 0, 32, site));
}
inline unsigned __reduce_add_sync(unsigned mask, unsigned value, DLCORE_EMU_HERE) {
  return unsigned(dlcore_emu::warp_op(dlcore_emu::WarpOp::ReduceAdd, mask, value, 0, 32, site));
}
inline int __reduce_add_sync(unsigned mask, int value, DLCORE_EMU_HERE) {
  return int(dlcore_emu::warp_op(dlcore_emu::WarpOp::ReduceAdd, mask, unsigned(value), 0, 32, site));
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned value, DLCORE_EMU_HERE) {
  return unsigned(dlcore_emu::warp_op(dlcore_emu::WarpOp::ReduceMin, mask, value, 0, 32, site));
}
inline int __reduce_min_sync(unsigned mask, int value, DLCORE_EMU_HERE) {
  return int(dlcore_emu::warp_op(dlcore_emu::WarpOp::ReduceMin, mask, unsigned(value), 1, 32, site));
}
inline unsigned __reduce_max_sync(unsigned mask, unsigned value, DLCORE_EMU_HERE) {
  return unsigned(dlcore_emu::warp_op(dlcore_emu::WarpOp::ReduceMax, mask, value, 0, 32, site));
}
inline int __reduce_max_sync(unsigned mask, int value, DLCORE_EMU_HERE) {
  return int(dlcore_emu::warp_op(dlcore_emu::WarpOp::ReduceMax, mask, unsigned(value), 1, 32, site));
}

// ------------------------------------------------------------------ atomics (relaxed, like CUDA's)
namespace dlcore_emu {
template <class T>
inline std::atomic_ref<T> atom(T* p) { return std::atomic_ref<T>(*p); }
template <class T, class F>
inline T atomic_update(T* p, F f) {  // compare-and-swap loop; returns the old value
  std::atomic_ref<T> a(*p);
  T old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, f(old), std::memory_order_relaxed)) {
  }
  return old;
}
}  // namespace dlcore_emu

#define DLCORE_EMU_FETCH(name, T, method) \
  inline T name(T* address, T val) { return dlcore_emu::atom(address).method(val, std::memory_order_relaxed); }
#define DLCORE_EMU_UPDATE(name, T, new_value) \
  inline T name(T* address, T val) { return dlcore_emu::atomic_update(address, [=](T old) { return new_value; }); }
DLCORE_EMU_FETCH(atomicAdd, int, fetch_add)
DLCORE_EMU_FETCH(atomicAdd, unsigned int, fetch_add)
DLCORE_EMU_FETCH(atomicAdd, unsigned long long, fetch_add)
DLCORE_EMU_FETCH(atomicAdd, float, fetch_add)
DLCORE_EMU_FETCH(atomicAdd, double, fetch_add)
DLCORE_EMU_FETCH(atomicSub, int, fetch_sub)
DLCORE_EMU_FETCH(atomicSub, unsigned int, fetch_sub)
DLCORE_EMU_FETCH(atomicExch, int, exchange)
DLCORE_EMU_FETCH(atomicExch, unsigned int, exchange)
DLCORE_EMU_FETCH(atomicExch, unsigned long long, exchange)
DLCORE_EMU_FETCH(atomicExch, float, exchange)
DLCORE_EMU_FETCH(atomicAnd, int, fetch_and)
DLCORE_EMU_FETCH(atomicAnd, unsigned int, fetch_and)
DLCORE_EMU_FETCH(atomicAnd, unsigned long long, fetch_and)
DLCORE_EMU_FETCH(atomicOr, int, fetch_or)
DLCORE_EMU_FETCH(atomicOr, unsigned int, fetch_or)
DLCORE_EMU_FETCH(atomicOr, unsigned long long, fetch_or)
DLCORE_EMU_FETCH(atomicXor, int, fetch_xor)
DLCORE_EMU_FETCH(atomicXor, unsigned int, fetch_xor)
DLCORE_EMU_FETCH(atomicXor, unsigned long long, fetch_xor)
DLCORE_EMU_UPDATE(atomicMax, int, old > val ? old : val)
DLCORE_EMU_UPDATE(atomicMax, unsigned int, old > val ? old : val)
DLCORE_EMU_UPDATE(atomicMax, long long, old > val ? old : val)
DLCORE_EMU_UPDATE(atomicMax, unsigned long long, old > val ? old : val)
DLCORE_EMU_UPDATE(atomicMin, int, old < val ? old : val)
DLCORE_EMU_UPDATE(atomicMin, unsigned int, old < val ? old : val)
DLCORE_EMU_UPDATE(atomicMin, long long, old < val ? old : val)
DLCORE_EMU_UPDATE(atomicMin, unsigned long long, old < val ? old : val)
DLCORE_EMU_UPDATE(atomicInc, unsigned int, old >= val ? 0u : old + 1)
DLCORE_EMU_UPDATE(atomicDec, unsigned int, old == 0 || old > val ? val : old - 1)
#undef DLCORE_EMU_FETCH
#undef DLCORE_EMU_UPDATE

template <class T>
inline T dlcore_emu_cas(T* address, T compare, T val) {
  std::atomic_ref<T>(*address).compare_exchange_strong(compare, val, std::memory_order_relaxed);
  return compare;  // the old value, whether or not it was swapped
}
inline int atomicCAS(int* a, int c, int v) { return dlcore_emu_cas(a, c, v); }
inline unsigned int atomicCAS(unsigned int* a, unsigned int c, unsigned int v) { return dlcore_emu_cas(a, c, v); }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long c, unsigned long long v) {
  return dlcore_emu_cas(a, c, v);
}
inline unsigned short atomicCAS(unsigned short* a, unsigned short c, unsigned short v) {
  return dlcore_emu_cas(a, c, v);
}

// ------------------------------------------------------------------ loads and stores with cache hints
template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldca(const T* p) { return *p; }
template <class T> inline T __ldcg(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline T __ldlu(const T* p) { return *p; }
template <class T> inline T __ldcv(const T* p) { return *p; }
template <class T> inline void __stwb(T* p, T v) { *p = v; }
template <class T> inline void __stcg(T* p, T v) { *p = v; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
template <class T> inline void __stwt(T* p, T v) { *p = v; }

// ------------------------------------------------------------------ math
// Intrinsics are computed exactly (no fast-math approximation); compare with tolerances.
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return powf(10.0f, x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) { *s = sinf(x); *c = cosf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float a, float b) { return a / b; }
inline float fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
inline double normcdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752); }

inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned int __float_as_uint(float f) { unsigned int i; std::memcpy(&i, &f, 4); return i; }
inline float __uint_as_float(unsigned int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline long long __double_as_longlong(double d) { long long i; std::memcpy(&i, &d, 8); return i; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline int __float2int_rn(float x) { return int(nearbyintf(x)); }
inline int __float2int_rz(float x) { return int(truncf(x)); }
inline int __float2int_rd(float x) { return int(floorf(x)); }
inline int __float2int_ru(float x) { return int(ceilf(x)); }
inline unsigned int __float2uint_rn(float x) { return (unsigned int)(nearbyintf(x)); }
inline float __int2float_rn(int x) { return float(x); }
inline float __uint2float_rn(unsigned int x) { return float(x); }

inline unsigned int __umulhi(unsigned int a, unsigned int b) { return unsigned((unsigned long long)a * b >> 32); }
inline int __mulhi(int a, int b) { return int((long long)a * b >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)((unsigned __int128)a * b >> 64);
}
inline long long __mul64hi(long long a, long long b) { return (long long)((__int128)a * b >> 64); }
inline int __mul24(int a, int b) { return (int(unsigned(a) << 8) >> 8) * (int(unsigned(b) << 8) >> 8); }
inline unsigned int __umul24(unsigned int a, unsigned int b) { return (a & 0xFFFFFFu) * (b & 0xFFFFFFu); }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz(unsigned(x)) : 32; }
inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x) {
  x = (x >> 16) | (x << 16);
  x = ((x & 0xFF00FF00u) >> 8) | ((x & 0x00FF00FFu) << 8);
  x = ((x & 0xF0F0F0F0u) >> 4) | ((x & 0x0F0F0F0Fu) << 4);
  x = ((x & 0xCCCCCCCCu) >> 2) | ((x & 0x33333333u) << 2);
  return ((x & 0xAAAAAAAAu) >> 1) | ((x & 0x55555555u) << 1);
}
inline long long clock64() {
  return (long long)std::chrono::steady_clock::now().time_since_epoch().count();
}

// CUDA's global min/max overloads, including the mixed signed/unsigned ones.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline unsigned int min(int a, unsigned int b) { return min(unsigned(a), b); }
inline unsigned int max(int a, unsigned int b) { return max(unsigned(a), b); }
inline unsigned int min(unsigned int a, int b) { return min(a, unsigned(b)); }
inline unsigned int max(unsigned int a, int b) { return max(a, unsigned(b)); }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(double(a), b); }
inline double max(float a, double b) { return fmax(double(a), b); }
inline double min(double a, float b) { return fmin(a, double(b)); }
inline double max(double a, float b) { return fmax(a, double(b)); }

// ------------------------------------------------------------------ entry points for Python
#define DLCORE_EMU_EXPORT extern "C" __attribute__((visibility("default")))

DLCORE_EMU_EXPORT int dlcore_emu_sanitized() {
#if defined(__SANITIZE_ADDRESS__)
  return 1;
#else
  return 0;
#endif
}

DLCORE_EMU_EXPORT int dlcore_emu_kernel_count() {
  int n = 0;
  while (dlcore_emu_kernel_table[n].name) n++;
  return n;
}

DLCORE_EMU_EXPORT const char* dlcore_emu_kernel_name(int index) { return dlcore_emu_kernel_table[index].name; }

// Parameter types of a kernel, each followed by ';'. The text lives as long as the library.
DLCORE_EMU_EXPORT const char* dlcore_emu_kernel_signature(int index) {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> v;
    for (int i = 0; dlcore_emu_kernel_table[i].name; i++) v.push_back(dlcore_emu_kernel_table[i].signature());
    return v;
  }();
  return texts[index].c_str();
}

// dims: grid x, y, z, block x, y, z (validated by Python). args: one pointer per kernel parameter
// to its value, as for cuLaunchKernel. Returns an ErrorCode; the message goes to `error`.
DLCORE_EMU_EXPORT int dlcore_emu_launch(int index, const unsigned* dims, std::size_t dyn_smem, std::size_t smem_limit,
                                        void** args, const dlcore_emu::Options* options, std::size_t* static_smem,
                                        char* error, std::size_t error_size) {
  const dlcore_emu::KernelEntry& k = dlcore_emu_kernel_table[index];
  dlcore_emu::Launch L;
  L.kernel = k.name;
  L.body = k.body;
  L.args = args;
  L.grid = dim3(dims[0], dims[1], dims[2]);
  L.block = dim3(dims[3], dims[4], dims[5]);
  L.nblocks = std::uint64_t(dims[0]) * dims[1] * dims[2];
  L.dyn_smem = dyn_smem;
  L.smem_limit = smem_limit;
  L.options = *options;
  dlcore_emu::pool().run(L, unsigned(options->workers < 1 ? 1 : options->workers));
  *static_smem = L.static_smem.load();
  if (L.error_code != dlcore_emu::kOk) std::snprintf(error, error_size, "%s", L.error.c_str());
  return L.error_code;
}

#if defined(DLCORE_EMU_ASM_SWITCH)
// Saves the callee-saved registers on the current stack, stores the stack pointer in *save_sp and
// resumes the context whose stack pointer is load_sp. MXCSR and the x87 control word are shared by
// all fibers: kernels cannot change rounding modes, and saving them costs more than the rest.
asm(R"(
  .text
  .globl dlcore_emu_swap
  .hidden dlcore_emu_swap
  .type dlcore_emu_swap,@function
dlcore_emu_swap:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size dlcore_emu_swap,.-dlcore_emu_swap

)");
#endif
