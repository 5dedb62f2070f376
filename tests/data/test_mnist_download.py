"""Downloads into the cache (from a local HTTP server or file:// only) and the offline error."""
import functools
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from dlcore.data import DatasetNotFoundError, load_mnist
from dlcore.data.mnist import SPLIT_FILES

from .synthetic_idx import (
    UNREACHABLE_MIRROR,
    set_source,
    synthetic_split,
    write_split,
)

TEST_NAMES = SPLIT_FILES["test"]


class _QuietRecordingHandler(http.server.SimpleHTTPRequestHandler):
    requested: list

    def do_GET(self):
        self.requested.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/mirror; yields (folder, url, paths asked)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    requested = []
    handler = type("Handler", (_QuietRecordingHandler,), {"requested": requested})
    serve_folder = functools.partial(handler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), serve_folder)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def cache_folder(cache_root):
    return cache_root / "dlcore" / "datasets" / "mnist"


def test_download_into_the_cache_after_an_unreachable_mirror(isolated_env, mirror, monkeypatch):
    folder, url, requested = mirror
    images, labels = synthetic_split(6)
    digests = write_split(folder, "test", images, labels)
    set_source(monkeypatch, mirrors=(UNREACHABLE_MIRROR, url), checksums=digests)

    x, y = load_mnist("test")
    np.testing.assert_array_equal(x[:, 0] * 255, images)
    np.testing.assert_array_equal(y, labels)
    cache = cache_folder(isolated_env)
    stored = sorted(path.name for path in cache.iterdir())
    assert stored == sorted(f"{name}.gz" for name in TEST_NAMES)  # no temporary files left
    assert sorted(requested) == sorted(f"/{name}.gz" for name in TEST_NAMES)

    load_mnist("test")
    assert len(requested) == 2  # the second load reads the cache


def test_a_verified_temporary_file_is_renamed_into_place(isolated_env, mirror, monkeypatch):
    folder, url, _ = mirror
    digests = write_split(folder, "test", *synthetic_split(2))
    set_source(monkeypatch, mirrors=(url,), checksums=digests)
    renames = []
    real_replace = os.replace

    def recording_replace(source, target):
        source, target = Path(source), Path(target)
        renames.append((source, target, source.is_file(), target.exists()))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    load_mnist("test")
    assert len(renames) == 2
    for source, target, source_was_complete, target_existed in renames:
        assert source.parent == target.parent == cache_folder(isolated_env)
        assert source.name.startswith(f".{target.name}.") and source.suffix == ".part"
        assert source_was_complete and not target_existed and not source.exists()


def test_only_missing_files_are_downloaded(isolated_env, mirror, monkeypatch):
    folder, url, requested = mirror
    digests = write_split(folder, "test", *synthetic_split(4))
    write_split(cache_folder(isolated_env), "test", *synthetic_split(4), compress=False)
    (cache_folder(isolated_env) / TEST_NAMES[0]).unlink()
    set_source(monkeypatch, mirrors=(url,), checksums=digests)
    load_mnist("test")
    assert requested == [f"/{TEST_NAMES[0]}.gz"]


def test_download_from_a_file_url(isolated_env, tmp_path, monkeypatch):
    digests = write_split(tmp_path / "mirror", "test", *synthetic_split(3))
    file_url = (tmp_path / "mirror").as_uri() + "/"
    set_source(monkeypatch, mirrors=(file_url,), checksums=digests)
    assert load_mnist("test")[1].tolist() == [0, 1, 2]


def test_a_corrupt_download_never_reaches_the_cache(isolated_env, mirror, monkeypatch):
    folder, url, _ = mirror
    digests = write_split(folder, "test", *synthetic_split(4))
    digests[TEST_NAMES[0]] = "f" * 32
    set_source(monkeypatch, mirrors=(url,), checksums=digests)
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist("test")
    assert f"MD5 mismatch of the decompressed content: expected {'f' * 32}" in str(info.value)
    cache = cache_folder(isolated_env)
    assert [path.name for path in cache.iterdir()] == []  # neither the bad file nor its temporary


def test_offline_error_says_what_is_needed_and_where(isolated_env, monkeypatch):
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist("train")
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        assert name in message
    for where in ("data_dir", "DLCORE_DATA", "shared"):
        assert where in message
    assert str(cache_folder(isolated_env)) in message
    assert UNREACHABLE_MIRROR in message


def test_fashion_mnist_downloads_into_its_own_cache(isolated_env, mirror, monkeypatch):
    folder, url, _ = mirror
    digests = write_split(folder, "test", *synthetic_split(3))
    set_source(monkeypatch, "fashion_mnist", mirrors=(url,), checksums=digests)
    assert load_mnist("test", dataset="fashion_mnist")[1].tolist() == [0, 1, 2]
    fashion_cache = isolated_env / "dlcore" / "datasets" / "fashion_mnist"
    assert sorted(path.name for path in fashion_cache.iterdir()) == sorted(
        f"{name}.gz" for name in TEST_NAMES
    )
    assert not cache_folder(isolated_env).exists()
