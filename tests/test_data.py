"""MNIST IDX reading: valid files, gzip, truncation, corruption, missing files offline; batching."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from biobench import data
from biobench.training import batches as batching


def _write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


def test_read_idx_roundtrip_plain_and_gzip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a", array)
    _write_idx(tmp_path / "b.gz", array, gz=True)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a", (2, 3, 4)), array)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "b.gz"), array)


def test_truncated_file_is_an_error_not_a_short_dataset(tmp_path):
    array = np.zeros((10, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "x", array)
    raw = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(raw[:-100])
    with pytest.raises(data.DataError, match="truncated or corrupt"):
        data.read_idx(tmp_path / "x")


def test_bad_magic_wrong_shape_and_broken_gzip(tmp_path):
    (tmp_path / "magic").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 20)
    with pytest.raises(data.DataError, match="bad magic"):
        data.read_idx(tmp_path / "magic")
    _write_idx(tmp_path / "shape", np.zeros((5,), dtype=np.uint8))
    with pytest.raises(data.DataError, match="expected"):
        data.read_idx(tmp_path / "shape", (60000,))
    (tmp_path / "broken.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(data.DataError, match="gzip"):
        data.read_idx(tmp_path / "broken.gz")


def test_missing_files_offline_give_one_clear_message(tmp_path, monkeypatch):
    import pooch

    def no_network(**kwargs):
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    data.load_idx_arrays.cache_clear()
    with pytest.raises(data.DataError) as info:
        data.load_mnist_arrays(str(tmp_path), True)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "--data-dir" in message


def test_corrupt_mnist_file_in_data_root_is_reported(tmp_path, data_dir):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in Path(data_dir, "MNIST", "raw").iterdir():
        shutil.copy(f, raw / f.name)
    labels = next(raw.glob("t10k-labels*"))
    labels.write_bytes(labels.read_bytes()[:5000])
    data.load_idx_arrays.cache_clear()
    with pytest.raises(data.DataError, match="t10k-labels"):
        data.load_mnist_arrays(str(tmp_path), False)


def test_real_mnist_loads_with_expected_shapes(data_dir):
    arrays = data.load_mnist_arrays(data_dir, False)
    assert arrays.train_images.shape == (60000, 28, 28)
    assert arrays.test_labels.shape == (10000,)
    assert sorted(np.unique(arrays.train_labels)) == list(range(10))


def test_tensor_batches_cover_every_example_once_per_epoch():
    x = torch.arange(10, dtype=torch.float32).unsqueeze(1)
    y = torch.arange(10)
    batches = batching.TensorBatches(x, y, batch_size=3, shuffle=True, seed=1)
    assert len(batches) == 4
    seen = torch.cat([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(10))
    again = torch.cat([yb for _, yb in batches])
    assert not torch.equal(seen, again)  # reshuffled each epoch
    fresh = torch.cat([yb for _, yb in batching.TensorBatches(x, y, 3, True, seed=1)])
    assert torch.equal(seen, fresh)  # same seed, same order


def test_batch_blocks_group_the_same_batches_in_order():
    x = torch.arange(25, dtype=torch.float32).unsqueeze(1)
    y = torch.arange(25)
    blocks = batching.BatchBlocks(batching.TensorBatches(x, y, batch_size=3, shuffle=True, seed=4), size=4)
    assert len(blocks) == 3  # 9 mini-batches: 4 + 4 + 1
    grouped = list(blocks)
    assert [len(b) for b in grouped] == [4, 4, 1]
    flat = [yb for block in grouped for _, yb in block]
    direct = [yb for _, yb in batching.TensorBatches(x, y, 3, True, seed=4)]
    assert len(flat) == len(direct) == 9
    assert all(torch.equal(a, b) for a, b in zip(flat, direct, strict=True))
    with pytest.raises(ValueError, match="block size"):
        batching.BatchBlocks(batching.TensorBatches(x, y, 3, False), size=0)
