"""Fashion-MNIST, KMNIST, CIFAR-10 and N-MNIST on tiny synthetic files in each dataset's real format.

Every test replaces the task's checksum table (its ``dataset``) by one that matches the
synthetic files, as the published checksums only match the real ones. Nothing here
reaches the network: pooch's download is replaced by a function that fails the way it
does offline.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from biobench import data
from biobench.plugin_api.registry import load_registry
from biobench.training import runner
from biobench_plugins.tasks.cifar10 import Cifar10
from biobench_plugins.tasks.mnist_format import FashionMnist, Kmnist
from biobench_plugins.tasks.nmnist import Nmnist

LONG_URL = "https://example.invalid/a/very/long/path/that/must/never/be/cut/train-images-idx3-ubyte.gz"


def _md5(payload: bytes) -> str:
    return hashlib.md5(payload).hexdigest()


@pytest.fixture(autouse=True)
def fresh_caches():
    """Loaders cache per process: every test reads its own files."""
    for loader in (data.load_idx_arrays, data.load_idx_tensors, data.load_cifar_arrays, data.load_cifar_tensors,
                   data.load_event_tensors):
        loader.cache_clear()
    yield
    for loader in (data.load_idx_arrays, data.load_idx_tensors, data.load_cifar_arrays, data.load_cifar_tensors,
                   data.load_event_tensors):
        loader.cache_clear()


@pytest.fixture
def offline(monkeypatch):
    """pooch.retrieve fails as it does without network; the calls are counted."""
    import pooch

    calls = []

    def no_network(url, **kwargs):
        calls.append(url)
        raise ConnectionError(f"HTTPSConnectionPool: Max retries exceeded with url: {url} (name resolution failed)")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    return calls


# ---------------------------------------------------------------------------
# IDX datasets (Fashion-MNIST, KMNIST)
# ---------------------------------------------------------------------------

def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _tiny_idx(folder: Path, spec: data.IdxDataset) -> tuple[data.IdxDataset, dict[str, np.ndarray]]:
    """Four gzipped IDX files (6 training and 3 test images of 2x2 pixels) and the matching spec."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": np.arange(24, dtype=np.uint8).reshape(6, 2, 2) * 10,
        "train_labels": np.array([0, 1, 2, 3, 4, 9], dtype=np.uint8),
        "test_images": np.full((3, 2, 2), 255, dtype=np.uint8),
        "test_labels": np.array([5, 6, 7], dtype=np.uint8),
    }
    files = {}
    for field, array in arrays.items():
        f = getattr(spec, field)
        payload = gzip.compress(_idx_bytes(array), mtime=0)
        (folder / f"{f.stem}.gz").write_bytes(payload)
        files[field] = dataclasses.replace(f, shape=array.shape, gz_md5=_md5(payload))
    return dataclasses.replace(spec, **files), arrays


@pytest.mark.parametrize("task_cls", [FashionMnist, Kmnist])
def test_idx_task_reads_the_gzipped_files_and_validates_on_the_last_examples(tmp_path, monkeypatch, task_cls):
    spec, arrays = _tiny_idx(tmp_path / task_cls.dataset.folder_name / "raw", task_cls.dataset)
    monkeypatch.setattr(task_cls, "dataset", spec)
    monkeypatch.setattr(task_cls, "validation_size", 2)
    task = task_cls(download=False)
    assert task.data_available(str(tmp_path)) is None
    split = task.load(str(tmp_path))
    assert split.train_x.shape == (4, 4) and split.val_x.shape == (2, 4) and split.test_x.shape == (3, 4)
    assert split.train_x.dtype == torch.float32 and split.train_y.dtype == torch.int64
    # image 5 (the last training image) holds 10 * (20, 21, 22, 23)
    assert split.val_x[1].tolist() == pytest.approx([200 / 255, 210 / 255, 220 / 255, 230 / 255])
    assert split.val_y.tolist() == [4, 9] and split.test_y.tolist() == [5, 6, 7]
    assert split.test_x.max().item() == 1.0
    assert split.info["validation"] == "last 2 images of the training file"
    assert split.info["checksums"]["train-images-idx3-ubyte.gz"] == f"md5:{spec.train_images.gz_md5}"
    assert len(split.info["checksums"]) == 4


def test_a_wrong_checksum_is_an_error_naming_the_file(tmp_path, monkeypatch):
    spec, _ = _tiny_idx(tmp_path / "FashionMNIST" / "raw", FashionMnist.dataset)
    wrong = dataclasses.replace(spec, test_labels=dataclasses.replace(spec.test_labels, gz_md5="0" * 32))
    monkeypatch.setattr(FashionMnist, "dataset", wrong)
    reason = FashionMnist(download=False).data_available(str(tmp_path))
    assert reason is not None and "t10k-labels-idx1-ubyte.gz" in reason and "0" * 32 in reason
    assert "not the published" in reason


def test_a_corrupt_gzip_with_its_checksum_is_still_an_error(tmp_path, monkeypatch):
    folder = tmp_path / "KMNIST" / "raw"
    spec, _ = _tiny_idx(folder, Kmnist.dataset)
    broken = (folder / "train-labels-idx1-ubyte.gz").read_bytes()[:-6]  # gzip without its trailer
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(broken)
    spec = dataclasses.replace(spec, train_labels=dataclasses.replace(spec.train_labels, gz_md5=_md5(broken)))
    monkeypatch.setattr(Kmnist, "dataset", spec)
    with pytest.raises(data.DataError, match="cannot be read as gzip"):
        Kmnist(download=False).load(str(tmp_path))


def test_a_decompressed_copy_is_refused_when_only_the_gz_checksum_is_published(tmp_path, monkeypatch):
    folder = tmp_path / "FashionMNIST" / "raw"
    spec, _ = _tiny_idx(folder, FashionMnist.dataset)
    gz = folder / "t10k-images-idx3-ubyte.gz"
    (folder / "t10k-images-idx3-ubyte").write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    monkeypatch.setattr(FashionMnist, "dataset", spec)
    with pytest.raises(data.DataError, match="decompressed copy cannot be checked"):
        FashionMnist(download=False).load(str(tmp_path))


def test_offline_without_data_says_where_to_put_what_then_every_download_error_whole(tmp_path, offline, monkeypatch):
    spec = FashionMnist.dataset
    monkeypatch.setattr(FashionMnist, "dataset", dataclasses.replace(spec, mirrors=(spec.mirrors[0], LONG_URL.removesuffix("train-images-idx3-ubyte.gz"))))
    reason = FashionMnist().data_available(str(tmp_path))
    folder = tmp_path / "FashionMNIST" / "raw"
    hint, _, errors = reason.partition("\nDownload errors:\n")
    assert hint.startswith(f"Fashion-MNIST is not in {folder} and could not be downloaded. Put train-images-idx3-ubyte.gz")
    assert "--data-dir" in hint and "FashionMNIST/raw/" in hint
    lines = errors.splitlines()
    assert len(lines) == 2 and all(line.startswith("  http") for line in lines)
    assert f"  {LONG_URL}: ConnectionError:" in lines[1] and lines[1].count(LONG_URL) == 2  # the URL, never cut
    assert len(offline) == 2  # one file tried on both mirrors, then the task gives up
    assert not (tmp_path / "FashionMNIST").exists()  # no empty folders left behind


def test_a_grid_skips_a_task_without_data_once_with_its_reason(tmp_path, offline, capsys):
    from biobench import cli

    code = cli.main(["run", "--task", "kmnist", "--arch", "mlp", "--rule", "backprop", "--rule", "feedback_alignment",
                     "--seeds", "0", "1", "--profile", "smoke", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 2 and "nothing to run" in err
    assert out.count("skipped task kmnist") == 1 and "KMNIST is not in" in out
    assert len(offline) == 2  # asked once for the task (two mirrors), not once per run of the grid
    assert "https://codh.rois.ac.jp/kmnist/dataset/kmnist/train-images-idx3-ubyte.gz" in out.replace("\n", "")
    assert not list((tmp_path / "out").glob("*.json"))


def test_preflight_keeps_the_tasks_that_have_their_data(tmp_path, offline, data_dir):
    from biobench import cli

    registry = load_registry(disable=[], only=[])
    specs = runner.plan_grid(registry, ["mnist", "fashion-mnist"], ["mlp"], ["backprop"], [0], "smoke")
    kept, skipped = cli.preflight(specs, registry, data_dir)
    assert [s.task for s in kept] == ["mnist"]
    assert list(skipped) == ["fashion-mnist"] and skipped["fashion-mnist"].startswith("Fashion-MNIST is not in")


# ---------------------------------------------------------------------------
# CIFAR-10 (python pickle batches)
# ---------------------------------------------------------------------------

def _batch_bytes(images: np.ndarray, labels: list[int]) -> bytes:
    return pickle.dumps({"batch_label": "testing batch 1 of 1", "labels": labels, "data": images}, protocol=2)


def _tiny_cifar(folder: Path) -> tuple[data.CifarDataset, dict[str, bytes]]:
    """Three training batches of 2 images (3 channels of 1x2 pixels) and one test batch, with the spec."""
    folder.mkdir(parents=True, exist_ok=True)
    payloads = {}
    for n, name in enumerate(("data_batch_1", "data_batch_2", "data_batch_3", "test_batch")):
        images = (np.arange(12, dtype=np.uint8).reshape(2, 6) + 20 * n).astype(np.uint8)
        payloads[name] = _batch_bytes(images, [n, 9 - n])
        (folder / name).write_bytes(payloads[name])
    batch = {name: data.PickleBatch(name, _md5(p), examples=2) for name, p in payloads.items()}
    spec = dataclasses.replace(
        Cifar10.dataset, train=tuple(batch[f"data_batch_{i}"] for i in (1, 2, 3)), test=(batch["test_batch"],),
        image_shape=(3, 1, 2),
    )
    return spec, payloads


def test_cifar_batches_load_with_the_published_row_layout_and_split(tmp_path, monkeypatch):
    spec, _ = _tiny_cifar(tmp_path / "cifar-10-batches-py")
    monkeypatch.setattr(Cifar10, "dataset", spec)
    monkeypatch.setattr(Cifar10, "validation_size", 2)
    split = Cifar10(download=False).load(str(tmp_path))
    assert split.train_x.shape == (4, 6) and split.val_x.shape == (2, 6) and split.test_x.shape == (2, 6)
    assert split.val_y.tolist() == [2, 7] and split.train_y.tolist() == [0, 9, 1, 8]  # batches in order
    assert split.val_x[1].tolist() == pytest.approx([(46 + i) / 255 for i in range(6)])  # batch 3, image 2
    assert split.info["checksums"]["test_batch"] == f"md5:{spec.test[0].md5}"
    assert "data_batch_5" in Cifar10.validation_note and Cifar10.input_size == 3072


def test_cifar_wrong_checksum_and_corrupt_batch(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    spec, payloads = _tiny_cifar(folder)
    wrong = dataclasses.replace(spec, test=(dataclasses.replace(spec.test[0], md5="f" * 32),))
    monkeypatch.setattr(Cifar10, "dataset", wrong)
    with pytest.raises(data.DataError, match=r"test_batch: its content has MD5 .* not the published f{32}"):
        Cifar10(download=False).load(str(tmp_path))
    truncated = payloads["data_batch_2"][:-40]
    (folder / "data_batch_2").write_bytes(truncated)
    corrupt = dataclasses.replace(spec, train=(spec.train[0], dataclasses.replace(spec.train[1], md5=_md5(truncated)), spec.train[2]))
    monkeypatch.setattr(Cifar10, "dataset", corrupt)
    with pytest.raises(data.DataError, match="data_batch_2: not a readable pickle batch"):
        Cifar10(download=False).load(str(tmp_path))


def test_a_batch_that_names_another_global_is_refused_before_anything_runs(tmp_path):
    class Boom:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "ran",))

    payload = pickle.dumps({"data": Boom(), "labels": [0]}, protocol=2)
    (tmp_path / "b").write_bytes(payload)
    spec = dataclasses.replace(Cifar10.dataset, image_shape=(3, 1, 2))
    with pytest.raises(data.DataError, match="is not allowed in a data batch"):
        data.read_batch(tmp_path / "b", data.PickleBatch("b", _md5(payload), 1), spec)
    assert not (tmp_path / "ran").exists()


def test_missing_batches_are_extracted_from_the_archive_after_its_checksum(tmp_path, monkeypatch):
    source = tmp_path / "source"
    spec, payloads = _tiny_cifar(source)
    folder = tmp_path / "root" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in payloads.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    (folder / "cifar-10-python.tar.gz").write_bytes(buffer.getvalue())
    archive = dataclasses.replace(spec.archive, md5=_md5(buffer.getvalue()))
    monkeypatch.setattr(Cifar10, "dataset", dataclasses.replace(spec, archive=archive))
    monkeypatch.setattr(Cifar10, "validation_size", 2)
    split = Cifar10(download=False).load(str(tmp_path / "root"))
    assert split.test_y.tolist() == [3, 6]
    assert (folder / "data_batch_1").read_bytes() == payloads["data_batch_1"]
    data.load_cifar_arrays.cache_clear()
    data.load_cifar_tensors.cache_clear()
    for name in payloads:
        (folder / name).unlink()
    monkeypatch.setattr(Cifar10, "dataset", dataclasses.replace(spec, archive=dataclasses.replace(archive, md5="1" * 32)))
    with pytest.raises(data.DataError, match="the archive has MD5"):
        Cifar10(download=False).load(str(tmp_path / "root"))


def test_cifar_offline_hint_names_the_batches_and_the_archive(tmp_path, offline):
    reason = Cifar10().data_available(str(tmp_path))
    assert reason.startswith(f"CIFAR-10 is not in {tmp_path / 'cifar-10-batches-py'} and could not be downloaded. "
                             "Put data_batch_1, data_batch_2")
    assert "test_batch, or the archive cifar-10-python.tar.gz" in reason
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz: ConnectionError" in reason


# ---------------------------------------------------------------------------
# N-MNIST (zip archives of event recordings, binned with tonic)
# ---------------------------------------------------------------------------

def _events(*events: tuple[int, int, int, int]) -> bytes:
    """N-MNIST's 5-byte events from (x, y, polarity, t in microseconds)."""
    out = bytearray()
    for x, y, p, t in events:
        out += bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


#: Three training recordings (stored out of order, in label folders) and two test recordings on a
#: 4x4 sensor; binned into 2 steps after 2x2 pooling: 8 features per bin, 16 inputs.
RECORDINGS = {
    "Train/3/00007.bin": _events((0, 0, 0, 0), (3, 1, 1, 50), (3, 0, 1, 55), (2, 2, 0, 60), (0, 3, 0, 100)),
    "Train/1/00002.bin": _events((1, 1, 1, 0), (1, 1, 1, 10)),
    "Train/0/00011.bin": b"",
    "Test/2/00001.bin": _events((0, 2, 1, 5)),
    "Test/0/00003.bin": _events((2, 0, 0, 0), (2, 0, 0, 20), (2, 0, 0, 40)),
}


def _tiny_nmnist(folder: Path, recordings: dict[str, bytes]) -> data.EventDataset:
    folder.mkdir(parents=True, exist_ok=True)
    remotes = {}
    for split, name in (("Train", "train.zip"), ("Test", "test.zip")):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for member, raw in recordings.items():
                if member.startswith(split):
                    archive.writestr(member, raw)
        (folder / name).write_bytes(buffer.getvalue())
        remotes[name] = data.RemoteFile(name, _md5(buffer.getvalue()), ("https://example.invalid/" + name,))
    return dataclasses.replace(
        Nmnist.dataset, train=remotes["train.zip"], test=remotes["test.zip"], train_examples=3, test_examples=2,
        sensor_size=(4, 4, 2), downsample=2, input_steps=2,
    )


def test_nmnist_bins_events_into_binary_time_steps_in_file_number_order(tmp_path, monkeypatch):
    pytest.importorskip("tonic")
    spec = _tiny_nmnist(tmp_path / "NMNIST", RECORDINGS)
    monkeypatch.setattr(Nmnist, "dataset", spec)
    monkeypatch.setattr(Nmnist, "validation_size", 1)
    split = Nmnist(download=False).load(str(tmp_path))
    assert split.train_y.tolist() == [1, 3] and split.val_y.tolist() == [0]  # files 00002, 00007 | 00011
    # 00007: duration 100 us, two bins of 50 us; t=100 falls after the last whole bin (tonic drops it).
    # t=0 (0,0,p0) -> bin 0 feature 0; t=50 (3,1,p1) and t=55 (3,0,p1) -> pooled pixel (1,0), p1 -> bin 1
    # feature 4 + 1 = 5 (one spike for two events); t=60 (2,2,p0) -> pooled (1,1) -> bin 1 feature 3.
    expected = torch.zeros(16)
    expected[[0, 8 + 5, 8 + 3]] = 1.0
    assert torch.equal(split.train_x[1], expected)
    # 00002: both events at pooled (0,0), p1; span 10 us -> 5 us bins: t=0 in bin 0, t=10 dropped.
    assert split.train_x[0].nonzero().flatten().tolist() == [4]
    assert split.val_x.sum().item() == 0.0  # an empty recording is all zeros
    assert split.test_y.tolist() == [2, 0]
    assert split.info["checksums"] == {"train.zip": f"md5:{spec.train.md5}", "test.zip": f"md5:{spec.test.md5}"}
    assert Nmnist.input_steps == 10 and Nmnist.input_size == 10 * 2 * 17 * 17


def test_nmnist_wrong_checksum_and_corrupt_recordings(tmp_path, monkeypatch):
    pytest.importorskip("tonic")
    spec = _tiny_nmnist(tmp_path / "NMNIST", RECORDINGS)
    monkeypatch.setattr(Nmnist, "dataset", dataclasses.replace(spec, test=dataclasses.replace(spec.test, md5="e" * 32)))
    reason = Nmnist(download=False).data_available(str(tmp_path))
    assert "test.zip: the archive has MD5" in reason and "e" * 32 in reason
    for member, raw, message in (
        ("Train/3/00007.bin", RECORDINGS["Train/3/00007.bin"][:-2], "not a whole number of 5-byte events"),
        ("Train/3/00007.bin", _events((9, 0, 0, 0)), "outside the 4x4 sensor"),
        ("Train/x/00007.bin", b"", "not in a folder named by a class"),
    ):
        data.load_event_tensors.cache_clear()
        recordings = {k: v for k, v in RECORDINGS.items() if k != "Train/3/00007.bin"} | {member: raw}
        monkeypatch.setattr(Nmnist, "dataset", _tiny_nmnist(tmp_path / f"c{len(message)}" / "NMNIST", recordings))
        with pytest.raises(data.DataError, match=message):
            Nmnist(download=False).load(str(tmp_path / f"c{len(message)}"))
    fewer = {k: v for k, v in RECORDINGS.items() if k != "Train/1/00002.bin"}
    monkeypatch.setattr(Nmnist, "dataset", dataclasses.replace(_tiny_nmnist(tmp_path / "f" / "NMNIST", fewer), train_examples=3))
    data.load_event_tensors.cache_clear()
    with pytest.raises(data.DataError, match="holds 2 recordings, not the published 3"):
        Nmnist(download=False).load(str(tmp_path / "f"))


def test_nmnist_without_tonic_says_how_to_install_it(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tonic(name, *args, **kwargs):
        if name.startswith("tonic"):
            raise ImportError("No module named 'tonic'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tonic)
    reason = Nmnist().data_available(str(tmp_path))
    assert "pip install 'biobench[events]'" in reason


def test_nmnist_runs_only_on_architectures_that_read_timed_input():
    registry = load_registry(disable=[], only=[])
    for arch, supported in (("snn", True), ("mlp", False), ("kan", False)):
        (spec,) = runner.plan_grid(registry, ["nmnist"], [arch], ["backprop"], [0], "smoke")
        resolved = runner.resolve(spec, registry)
        assert resolved.architecture.input_steps == 10
        reason = registry.unsupported_reason(resolved.architecture, resolved.rule_cls, resolved.task)
        assert (reason is None) == supported, reason
        if not supported:
            assert "'nmnist' gives 10 time bins" in reason and f"{arch!r}" in reason and "timed_input" in reason


def test_the_spiking_network_feeds_one_bin_per_time_step_as_given():
    from biobench_plugins.architectures.snn import SpikingNetwork

    architecture = SpikingNetwork(hidden=5, num_steps=7)
    architecture.input_steps = 3  # what the harness sets from the task
    network = architecture.build(3 * 4, 2, torch.Generator().manual_seed(0))
    assert network.layers[0].in_features == 4 and network.module.num_steps == 3
    x = (torch.rand(6, 12, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    _, signals = network.forward_with_signals(x)
    assert signals[0].pre.shape == (3, 6, 4)
    for t in range(3):
        assert torch.equal(signals[0].pre[t], x[:, 4 * t : 4 * (t + 1)])
    assert torch.equal(network(x), network(x))  # no random encoding
    x.requires_grad_(True)
    network(x).sum().backward()
    assert x.grad is not None and x.grad.shape == (6, 12)
    architecture.input_steps = 5
    with pytest.raises(ValueError, match="does not divide"):
        architecture.build(12, 2, torch.Generator())


def test_a_spiking_network_trains_on_binned_events_through_the_runner(tmp_path, monkeypatch):
    pytest.importorskip("tonic")
    from biobench.results import records

    spec = _tiny_nmnist(tmp_path / "NMNIST", RECORDINGS)
    monkeypatch.setattr(Nmnist, "dataset", spec)
    monkeypatch.setattr(Nmnist, "validation_size", 1)
    monkeypatch.setattr(Nmnist, "input_size", spec.input_size)
    monkeypatch.setattr(Nmnist, "input_steps", spec.input_steps)
    registry = load_registry(disable=[], only=[])
    ctx = runner.RunContext(registry=registry, out_dir=tmp_path / "out", data_dir=str(tmp_path), measurement_factories=[])
    (run,) = runner.plan_grid(registry, ["nmnist"], ["snn"], ["backprop"], [0], "smoke")
    record = runner.execute(run, ctx)
    assert record["status"] == "ok", record.get("reason")
    stored = records.read_record(ctx.record_path(run))
    assert stored["data"]["train_examples"] == 2 and stored["data"]["checksums"]["train.zip"] == f"md5:{spec.train.md5}"
    assert stored["metrics"]["parameter_count"] == 8 * 128 + 128 + 128 * 10 + 10  # 8 inputs per step


def test_a_task_whose_bins_do_not_divide_its_input_is_refused_at_load():
    from biobench import Task, hookimpl
    from biobench.plugin_api.registry import PluginSource

    class Uneven(Task):
        """Three bins that do not divide 784 inputs."""

        name = "uneven"
        description = "a task with an impossible input layout"
        num_classes = 2
        input_size = 784
        input_steps = 3

        def load(self, data_dir):
            raise AssertionError("never loaded")

    class Plugin:
        @hookimpl
        def biobench_register_tasks(self):
            return [Uneven]

    registry = load_registry(disable=[], only=[], extra_plugins=[(PluginSource("uneven", "tests", "tests", "0"), Plugin())])
    assert "uneven" not in registry.tasks
    assert any("input_steps=3 is not a positive divisor of input_size 784" in e.error for e in registry.errors)
