"""Bad launches and bad arguments are refused before the kernel runs, with a message that says
which kernel, which argument and what was expected."""
import numpy as np
import pytest

from dlcore import emu


@pytest.fixture
def saxpy(basics):
    return basics.get_function("saxpy_grid_stride")


@pytest.fixture
def arrays():
    return np.ones(64, np.float32), np.zeros(64, np.float32)


def run_saxpy(saxpy, x, y, *scalars, grid=(1,), block=(64,), **kwargs):
    saxpy(grid, block, (x, y, *scalars), **kwargs)


@pytest.mark.parametrize(
    "block, message",
    [
        ((1025,), r"block \(1025, 1, 1\) has 1025 threads, more than the 1024"),
        ((32, 33), r"block \(32, 33, 1\) has 1056 threads"),
        ((1, 1, 65), r"block.z = 65 is outside 1..64"),
        ((0,), r"block.x = 0 is outside 1..1024"),
    ],
)
def test_block_limits(saxpy, arrays, block, message):
    with pytest.raises(emu.LaunchError, match=f"kernel 'saxpy_grid_stride': {message}") as info:
        run_saxpy(saxpy, *arrays, np.float32(1), np.int32(64), block=block)
    assert isinstance(info.value, ValueError)
    assert (arrays[1] == 0).all()


@pytest.mark.parametrize("grid", [(0,), (1, 65536), (2**31,), (1, 1, -1)])
def test_grid_limits(saxpy, arrays, grid):
    with pytest.raises(ValueError, match=r"grid\.[xyz] = -?\d+ is outside"):
        run_saxpy(saxpy, *arrays, np.float32(1), np.int32(64), grid=grid)


@pytest.mark.parametrize("grid", [1.0, (1, 2, 3, 4), (True,), "1", ()])
def test_grid_must_be_ints(saxpy, arrays, grid):
    with pytest.raises(TypeError, match="grid must be an int or a tuple of 1 to 3 ints"):
        run_saxpy(saxpy, *arrays, np.float32(1), np.int32(64), grid=grid)


def test_grid_and_block_may_be_plain_ints(saxpy, arrays):
    x, y = arrays
    saxpy(2, 32, (x, y, np.float32(3), np.int32(64)))
    assert (y == 3).all()


@pytest.mark.parametrize(
    "scalars, message",
    [
        ((np.float32(1), 64), r"args\[3\] \(int\): expected numpy.int32, got Python int"),
        ((np.float32(1), np.int64(64)), r"args\[3\] \(int\): expected numpy.int32, got numpy.int64"),
        ((1.0, np.int32(64)), r"args\[2\] \(float\): expected numpy.float32, got Python float"),
        ((np.float64(1), np.int32(64)), r"args\[2\] \(float\): expected numpy.float32, got numpy.float64"),
        ((np.float32(1), np.array(64, np.int32)), r"args\[3\] \(int\): expected numpy.int32, got a NumPy array"),
    ],
)
def test_scalars_must_have_the_exact_c_type(saxpy, arrays, scalars, message):
    with pytest.raises(TypeError, match=f"kernel 'saxpy_grid_stride' {message}"):
        run_saxpy(saxpy, *arrays, *scalars)
    assert (arrays[1] == 0).all()  # nothing ran


def test_array_dtype_must_match_the_pointer_type(saxpy):
    x, y = np.ones(64, np.float64), np.zeros(64, np.float32)
    with pytest.raises(TypeError, match=r"args\[0\] \(const float\*\): expected an array of float32, got float64"):
        run_saxpy(saxpy, x, y, np.float32(1), np.int32(64))
    assert (y == 0).all()


def test_pointer_arguments_must_be_arrays(saxpy, arrays):
    with pytest.raises(TypeError, match=r"args\[1\] \(float\*\): expected a NumPy array, got Python list"):
        run_saxpy(saxpy, arrays[0], [0.0] * 64, np.float32(1), np.int32(64))


def test_arrays_must_be_c_contiguous(saxpy):
    x = np.ones((64, 2), np.float32)[:, 0]
    y = np.zeros(64, np.float32)
    with pytest.raises(TypeError, match=r"args\[0\] \(const float\*\): the array must be C-contiguous"):
        run_saxpy(saxpy, x, y, np.float32(1), np.int32(64))


def test_argument_count(saxpy, arrays):
    signature = r"\(const float\*, float\*, float, int\)"
    with pytest.raises(TypeError, match=rf"'saxpy_grid_stride' takes 4 arguments {signature}, got 3"):
        saxpy((1,), (64,), (*arrays, np.float32(1)))
    with pytest.raises(TypeError, match="args must be a tuple"):
        saxpy((1,), (64,), arrays[0])


def test_shared_mem_must_be_a_byte_count(basics, arrays):
    with pytest.raises(TypeError, match="shared_mem must be a non-negative int"):
        basics.get_function("reverse_in_block")((1,), (64,), (*arrays, np.int32(64)), shared_mem=-1)
