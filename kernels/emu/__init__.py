"""The CPU emulator of the CUDA dialect: cuda_emu.h is force-included when g++ builds a kernel file."""
