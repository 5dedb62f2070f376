"""The emulator runs the CUDA patterns the project's kernels use and matches NumPy."""
import numpy as np
import pytest

from dlcore import emu


def ceil_div(a, b):
    return -(-a // b)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_grid_stride_loop_covers_more_elements_than_threads(basics, rng):
    n = 10_000  # 8 blocks x 128 threads: each thread handles about ten elements
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    expected = 2.5 * x + y
    basics.get_function("saxpy_grid_stride")((8,), (128,), (x, y, np.float32(2.5), np.int32(n)))
    np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.parametrize("n", [1, 255, 256, 1000, 65_537])
def test_block_sum_with_shared_memory_shuffles_and_atomics(basics, rng, n):
    x = rng.standard_normal(n, dtype=np.float32)
    out = np.zeros(1, np.float32)
    basics.get_function("block_sum")((ceil_div(n, 256),), (256,), (x, out, np.int32(n)))
    np.testing.assert_allclose(out[0], x.sum(dtype=np.float64), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape", [(1, 1, 1), (17, 33, 5), (64, 48, 32), (50, 31, 70)])
def test_tiled_sgemm_matches_numpy_on_ragged_shapes(basics, rng, shape):
    M, N, K = shape
    A = rng.standard_normal((M, K), dtype=np.float32)
    B = rng.standard_normal((K, N), dtype=np.float32)
    C = np.full((M, N), np.nan, np.float32)
    grid = (ceil_div(N, 16), ceil_div(M, 16))
    basics.get_function("sgemm_tiled")(grid, (16, 16), (A, B, C, np.int32(M), np.int32(N), np.int32(K)))
    np.testing.assert_allclose(C, A @ B, rtol=1e-4, atol=1e-4)


def test_dynamic_shared_memory(basics, rng):
    n = 1000
    x = rng.standard_normal(n, dtype=np.float32)
    y = np.full(n, np.nan, np.float32)
    basics.get_function("reverse_in_block")((4,), (256,), (x, y, np.int32(n)), shared_mem=256 * 4)
    padded = np.concatenate([x, np.zeros(24, np.float32)]).reshape(4, 256)[:, ::-1].ravel()
    np.testing.assert_array_equal(y, padded[:n])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_template_kernel_through_name_expressions(basics, rng, dtype):
    ctype = {np.float32: "float", np.float64: "double"}[dtype]
    x = rng.standard_normal(300).astype(dtype)
    expected = x * dtype(3)
    basics.get_function(f"scale<{ctype}>")((2,), (256,), (x, dtype(3), np.int32(300)))
    np.testing.assert_array_equal(x, expected)


def test_shared_tile_sized_by_template_parameters(basics, rng):
    rows, cols = 37, 50
    a = rng.standard_normal((rows, cols), dtype=np.float32)
    out = np.full((cols, rows), np.nan, np.float32)
    grid = (ceil_div(cols, 16), ceil_div(rows, 16))
    basics.get_function("transpose<float, 16>")(grid, (16, 16), (a, out, np.int32(rows), np.int32(cols)))
    np.testing.assert_array_equal(out, a.T)


def test_kernel_without_arguments(basics):
    basics.get_function("no_arguments")((3, 2), (4, 4, 2), ())


def test_module_lists_its_kernels_and_rejects_unknown_names(basics):
    assert {"block_sum", "scale<float>", "transpose<float, 16>"} <= set(basics.kernel_names)
    with pytest.raises(LookupError, match="no kernel 'scale<int>'.*name_expressions"):
        basics.get_function("scale<int>")
    assert basics.get_function("block_sum") is basics.get_function("block_sum")


def test_pointer_parameters_are_typed_from_the_kernel_signature(basics):
    kernel = basics.get_function("sgemm_tiled")
    assert [p.c_type for p in kernel.parameters] == ["const float*", "const float*", "float*", "int", "int", "int"]


def test_blocks_run_in_parallel_workers_with_the_same_result(basics, rng):
    x = rng.standard_normal(100_000, dtype=np.float32)
    results = []
    for workers in (1, 2, 3):
        out = np.zeros(1, np.float32)
        with emu.configured(workers=workers):
            basics.get_function("block_sum")((ceil_div(x.size, 256),), (256,), (x, out, np.int32(x.size)))
        results.append(out[0])
    np.testing.assert_allclose(results, x.sum(dtype=np.float64), rtol=1e-5)
