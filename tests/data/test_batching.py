"""iterate_minibatches (one epoch) and BatchSampler (endless, checkpointable)."""
import json

import numpy as np
import pytest

from dlcore.data import BatchSampler, iterate_minibatches


def samples(n):
    """x (N, 2, 3) whose rows encode their index, y (N,) = the index."""
    return np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3), np.arange(n)


@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_exactly_once_per_epoch_with_rows_aligned(shuffle):
    x, y = samples(10)
    batches = list(iterate_minibatches(x, y, batch_size=3, shuffle=shuffle, rng=0))
    assert [len(yb) for _, yb in batches] == [3, 3, 3, 1]
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert (seen.tolist() == list(range(10))) == (not shuffle)
    for xb, yb in batches:
        np.testing.assert_array_equal(xb, x[yb])


def test_drop_last_drops_the_short_batch():
    x, y = samples(10)
    batches = list(iterate_minibatches(x, y, batch_size=3, rng=0, drop_last=True))
    assert [len(yb) for _, yb in batches] == [3, 3, 3]
    assert len(set(np.concatenate([yb for _, yb in batches]).tolist())) == 9
    assert list(iterate_minibatches(y, batch_size=11, drop_last=True)) == []


def test_in_order_batches_are_views_and_shuffled_ones_copies():
    x, y = samples(8)
    in_order = next(iterate_minibatches(x, y, batch_size=4, shuffle=False))
    shuffled = next(iterate_minibatches(x, y, batch_size=4, rng=0))
    assert np.shares_memory(in_order[0], x) and np.shares_memory(in_order[1], y)
    assert not np.shares_memory(shuffled[0], x)


def test_shuffle_is_reproducible_with_a_seed_or_generator():
    _, y = samples(50)

    def order(rng):
        return np.concatenate([yb for (yb,) in iterate_minibatches(y, batch_size=7, rng=rng)])

    np.testing.assert_array_equal(order(3), order(3))
    np.testing.assert_array_equal(order(3), order(np.random.default_rng(3)))
    assert not np.array_equal(order(3), order(4))


def test_any_number_of_arrays_yields_tuples():
    x, y = samples(5)
    assert [len(batch) for batch in iterate_minibatches(y, batch_size=5)] == [1]
    (xb, yb, zb), = iterate_minibatches(x, y, -y, batch_size=5, shuffle=False)
    np.testing.assert_array_equal(zb, -yb)
    assert list(iterate_minibatches(np.empty((0, 3)), batch_size=2)) == []


def test_mismatched_sizes_and_bad_batch_size_fail_at_call_time():
    x, _ = samples(100)
    with pytest.raises(ValueError, match=r"arrays\[0\] has 100, arrays\[1\] has 99"):
        iterate_minibatches(x, np.arange(99), batch_size=10)
    with pytest.raises(ValueError, match="batch_size must be >= 1, found 0"):
        iterate_minibatches(x, batch_size=0)
    with pytest.raises(TypeError):
        iterate_minibatches(x, batch_size=2.5)
    with pytest.raises(TypeError):
        iterate_minibatches(batch_size=2)


def test_sampler_reshuffles_each_epoch_and_keeps_batches_full():
    sampler = BatchSampler(10, 4, rng=0)
    indices = np.concatenate([sampler.next_indices() for _ in range(5)])  # 20 indices = 2 epochs
    first_epoch, second_epoch = indices[:10], indices[10:]
    assert sorted(first_epoch.tolist()) == sorted(second_epoch.tolist()) == list(range(10))
    assert not np.array_equal(first_epoch, second_epoch)
    assert (sampler.epoch, sampler.position) == (2, 0)
    assert sampler.next_indices().shape == (4,) and (sampler.epoch, sampler.position) == (2, 4)


def test_sampler_batch_larger_than_the_data_spans_epochs():
    sampler = BatchSampler(3, 7, rng=1, shuffle=False)
    assert sampler.next_indices().tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert (sampler.epoch, sampler.position) == (2, 1)


def test_sampler_over_the_notes_schedule():
    sampler = BatchSampler(55000, 32, rng=0)
    for _ in range(20000):
        sampler.next_indices()
    assert (sampler.epoch, sampler.position) == divmod(20000 * 32, 55000)  # 11 + 35000/55000


def test_sampler_seeds():
    def draw(sampler):
        return [sampler.next_indices().tolist() for _ in range(4)]

    assert draw(BatchSampler(9, 4, rng=5)) == draw(BatchSampler(9, 4, rng=5))
    assert BatchSampler(9, 4, rng=5).seed == 5
    seed_from_generator = BatchSampler(9, 4, rng=np.random.default_rng(2)).seed
    assert BatchSampler(9, 4, rng=np.random.default_rng(2)).seed == seed_from_generator
    assert draw(BatchSampler(9, 4, rng=5)) != draw(BatchSampler(9, 4, rng=6))
    with pytest.raises(ValueError, match="seed"):
        BatchSampler(9, 4, rng=-1)


def test_sampler_returns_arrays_the_caller_may_modify():
    sampler = BatchSampler(6, 6, rng=0)
    batch = sampler.next_indices()
    expected = sampler.epoch_order(0).copy()
    batch[:] = -1
    np.testing.assert_array_equal(sampler.epoch_order(0), expected)


@pytest.mark.parametrize("storage", ["dict", "json", "npz"])
def test_sampler_state_round_trip(storage, tmp_path):
    sampler = BatchSampler(23, 5, rng=11)
    for _ in range(7):
        sampler.next_indices()
    state = sampler.state_dict()
    assert all(type(value) is int for value in state.values())
    if storage == "json":
        state = json.loads(json.dumps(state))
    elif storage == "npz":
        np.savez(tmp_path / "state.npz", **state)
        with np.load(tmp_path / "state.npz", allow_pickle=False) as stored:
            state = dict(stored)
    expected = [sampler.next_indices().tolist() for _ in range(10)]

    restored = BatchSampler(23, 5, rng=99)
    restored.next_indices()
    restored.load_state_dict(state)
    assert (restored.seed, restored.epoch, restored.position) == (11, 1, 12)
    assert [restored.next_indices().tolist() for _ in range(10)] == expected


def test_sampler_rejects_a_foreign_state():
    state = BatchSampler(23, 5, rng=0).state_dict()
    with pytest.raises(ValueError, match="n_samples=23"):
        BatchSampler(24, 5).load_state_dict(state)
    with pytest.raises(ValueError, match="batch_size=5"):
        BatchSampler(23, 4).load_state_dict(state)
    with pytest.raises(ValueError, match="position"):
        BatchSampler(23, 5).load_state_dict({**state, "position": 23})
    with pytest.raises(ValueError):
        BatchSampler(0, 5)
