"""`python -m dlcore.gpu_check`: validate a GPU machine end to end, in one command.

Steps, each reported as passed, failed or skipped (with the reason):
  gpu_tests    the gpu-marked test suite (pytest -m gpu), from a source checkout
  training     the notes' network trained for --iterations on the backend: test accuracy and
               images/s, and its losses on the first --compare-batches batches beside the numpy
               backend's on the same batches (equal to float32 tolerance)
  kernels      every benchmarked kernel (dlcore.bench) with its share of the FP32 peak and of the
               memory bandwidth, beside cuDNN / cuBLAS through PyTorch where it has a GPU
  sanitizers   compute-sanitizer memcheck and racecheck over one training step, where it is on PATH

It writes gpu_check.json and gpu_check.md into --out and prints their paths. Without a usable
GPU it stops at once with the reason. `--backend emu` with tiny sizes runs the same orchestration
on the CPU emulator (what CI does); the parts that need a GPU are skipped with the reason.

    python -m dlcore.gpu_check --out "$OUT"
    python -m dlcore.gpu_check --backend emu --iterations 3 --batch-size 2 --compare-batches 3 \\
        --test-limit 8 --bench-batch 1 --bench-ops pool1 --tests tests/ops/test_optim_update.py

Modules: cli (options, the plan, exit status), report (step results, JSON and markdown),
test_suite, training, kernels, sanitizers (one step each), one_step (the process the sanitizers run).
"""
