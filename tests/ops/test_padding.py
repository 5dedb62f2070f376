"""resolve_padding: TensorFlow "same", "valid", explicit ints, and the errors."""

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlcore.ops import resolve_padding
from dlcore.ops.padding import window_2d


@pytest.mark.parametrize(
    "size, kernel, stride, padding, expected",
    [
        (28, 5, 1, "same", (28, 2, 2)),
        (28, 2, 2, "same", (14, 0, 0)),
        (14, 2, 2, "same", (7, 0, 0)),
        (7, 2, 2, "same", (4, 0, 1)),  # odd size: the extra cell goes after
        (7, 3, 2, "same", (4, 1, 1)),
        (8, 4, 1, "same", (8, 1, 2)),  # even kernel
        (1, 5, 3, "same", (1, 2, 2)),
        (28, 5, 1, "valid", (24, 0, 0)),
        (9, 3, 2, "valid", (4, 0, 0)),
        (5, 5, 1, "VALID", (1, 0, 0)),
        (13, 3, 2, 1, (7, 1, 1)),
        (11, 1, 1, 0, (11, 0, 0)),
    ],
)
def test_known_geometries(size, kernel, stride, padding, expected):
    assert resolve_padding(size, kernel, stride, padding) == expected


@given(size=st.integers(1, 64), kernel=st.integers(1, 9), stride=st.integers(1, 4))
def test_same_covers_the_input_exactly(size, kernel, stride):
    out, before, after = resolve_padding(size, kernel, stride, "same")
    assert out == math.ceil(size / stride)
    assert 0 <= after - before <= 1
    # the last window ends inside the padded input, and no padding is left unused
    assert (out - 1) * stride + kernel <= before + size + after
    assert before + after == 0 or (out - 1) * stride + kernel == before + size + after


@pytest.mark.parametrize(
    "args, message",
    [
        ((5, 0, 1, "same"), "kernel size must be >= 1, got 0"),
        ((5, 3, 0, "same"), "stride must be >= 1, got 0"),
        ((3, 5, 1, "valid"), "kernel 5 > size 3"),
        ((3, 7, 1, 1), "output size -1 < 1 for size 3, kernel 7, stride 1, padding 1"),
        ((5, 3, 1, -1), "padding must be >= 0, got -1"),
        ((5, 3, 1, "full"), "padding must be 'same', 'valid' or an int, got 'full'"),
        ((5, 3, 1, 1.5), "padding must be 'same', 'valid' or an int"),
    ],
)
def test_errors(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_padding(*args)


def test_window_takes_pairs_and_names_the_op():
    window = window_2d("my_op", (7, 9), (3, 1), (2, 1), (1, 0))
    assert window.out_size == (4, 9)
    assert (window.pad_h, window.pad_w) == ((1, 1), (0, 0))
    with pytest.raises(ValueError, match=r"my_op: .*kernel 5 > size 4.*input \(4, 9\)"):
        window_2d("my_op", (4, 9), 5, 1, "valid")
    with pytest.raises(ValueError, match="my_op: stride must be an int or a pair of ints, got"):
        window_2d("my_op", (4, 9), 3, (1, 2, 3), "valid")
