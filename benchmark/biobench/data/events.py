"""Event-camera datasets in the N-MNIST format, binned into time steps with tonic.

An :class:`EventDataset` names two published zip archives (training and test)
whose members are ``<folder>/<label>/<number>.bin`` recordings in Orchard et al.'s
format: 5 bytes per event (x, y, polarity and a 23-bit timestamp in microseconds).
The archives are kept as downloaded (``<root>/<folder_name>/``) and read in place;
each is checked against its published MD5 whenever it is loaded, so nothing
unpacked needs a checksum of its own. Every recording is then

1. parsed by ``tonic.io.read_mnist_file`` (tonic is an optional dependency:
   ``pip install 'biobench[events]'``), its events checked to lie on the sensor;
2. spatially downsampled by ``downsample`` (``tonic.transforms.Downsample``:
   coordinates divided and floored, so ``downsample``² pixels pool into one);
3. binned into ``input_steps`` frames of equal duration spanning the recording's
   first to last event (``tonic.transforms.ToFrame(n_time_bins=input_steps)``,
   which counts events per pixel and polarity; events after the last whole bin
   are dropped, as tonic does);
4. made binary (a bin holds a spike where at least one event fell) and flattened
   time-major: input ``t * F + (p * H + y) * W + x`` is bin ``t``, polarity ``p``,
   pixel ``(x, y)``, with ``F = 2 * H * W`` features per bin.

Inputs are therefore spike trains in {0, 1}, as the harness expects of inputs
(float32 in [0, 1]). The examples are ordered by the number in their file name
(then by label), not by label as the archive's folders are, so that the last
training examples (the validation split) are not all of one class.
"""

from __future__ import annotations

import functools
import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from biobench.data.files import DataError, DataSource, RemoteFile, check_md5, file_md5, find_local
from biobench.data.idx import DatasetTensors

#: The field layout tonic gives N-MNIST's events (``tonic.datasets.NMNIST.dtype``).
EVENT_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
#: Bytes per event in the N-MNIST binary format.
EVENT_BYTES = 5


@dataclass(frozen=True)
class EventDataset:
    """Two archives of N-MNIST-format recordings and how they become inputs (see the module docstring)."""

    title: str
    folder_name: str
    train: RemoteFile
    test: RemoteFile
    train_examples: int
    test_examples: int
    sensor_size: tuple[int, int, int] = (34, 34, 2)
    downsample: int = 1
    input_steps: int = 1
    num_classes: int = 10

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """One bin's shape ``(polarities, height, width)`` after downsampling."""
        width, height, polarities = self.sensor_size
        return polarities, math.ceil(height / self.downsample), math.ceil(width / self.downsample)

    @property
    def input_size(self) -> int:
        """Features of one flattened example: ``input_steps`` bins of ``frame_shape``."""
        return self.input_steps * math.prod(self.frame_shape)

    @property
    def source(self) -> DataSource:
        """The archives' folder, names, checksums and addresses."""
        return DataSource(self.title, (self.folder_name,), (self.train, self.test))

    def tensors(self, root: str | None, download: bool = True) -> DatasetTensors:
        """The dataset as tensors, checked and binned once per process (:func:`load_event_tensors`)."""
        return load_event_tensors(self, root, download)


def tonic_modules() -> tuple[object, object]:
    """``tonic.io`` and ``tonic.transforms``, or a :class:`DataError` saying how to install tonic."""
    try:
        import tonic.io
        import tonic.transforms
    except ImportError as exc:
        raise DataError(
            f"event datasets are read with tonic, which is not installed ({exc}); "
            "install it with: pip install 'biobench[events]'"
        ) from exc
    return tonic.io, tonic.transforms


def bin_recording(raw: bytes, spec: EventDataset, where: str) -> np.ndarray:
    """One recording's bytes as binary spikes, flattened time-major (module docstring), uint8."""
    tonic_io, transforms = tonic_modules()
    if len(raw) % EVENT_BYTES:
        raise DataError(f"{where}: {len(raw)} bytes is not a whole number of {EVENT_BYTES}-byte events; corrupt")
    events = tonic_io.read_mnist_file(io.BytesIO(raw), dtype=EVENT_DTYPE, is_stream=True)
    width, height, polarities = spec.sensor_size
    if events.size and (events["x"].max() >= width or events["y"].max() >= height or events["p"].max() >= polarities):
        raise DataError(f"{where}: an event lies outside the {width}x{height} sensor; the recording is corrupt")
    frames = np.zeros((spec.input_steps, *spec.frame_shape), dtype=np.uint8)
    if events.size:
        pooled = transforms.Downsample(spatial_factor=1.0 / spec.downsample)(events)
        p, h, w = spec.frame_shape
        counts = transforms.ToFrame(sensor_size=(w, h, p), n_time_bins=spec.input_steps)(pooled)
        frames[: len(counts)] = counts > 0
    return frames.reshape(-1)


def _order(info: zipfile.ZipInfo) -> tuple[int, str, str]:
    path = PurePosixPath(info.filename)
    return (int(path.stem) if path.stem.isdigit() else -1, path.stem, path.parent.name)


def read_archive(path: Path, spec: EventDataset, examples: int) -> tuple[np.ndarray, np.ndarray]:
    """Every recording of one archive: binary inputs (examples, input_size) uint8 and int64 labels."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: cannot be read as a zip archive ({exc}); delete it so it can be fetched again") from exc
    with archive:
        members = [i for i in archive.infolist() if not i.is_dir() and i.filename.endswith(".bin")]
        if len(members) != examples:
            raise DataError(f"{path}: holds {len(members)} recordings, not the published {examples}; truncated or corrupt")
        inputs = np.zeros((examples, spec.input_size), dtype=np.uint8)
        labels = np.zeros(examples, dtype=np.int64)
        for n, info in enumerate(sorted(members, key=_order)):
            label = PurePosixPath(info.filename).parent.name
            if not label.isdigit() or int(label) >= spec.num_classes:
                raise DataError(f"{path}: member {info.filename} is not in a folder named by a class 0..{spec.num_classes - 1}")
            try:
                raw = archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise DataError(f"{path}: member {info.filename} cannot be read ({exc}); the archive is corrupt") from exc
            inputs[n] = bin_recording(raw, spec, f"{path}:{info.filename}")
            labels[n] = int(label)
    return inputs, labels


def _checked_archive(spec: EventDataset, folder: Path, remote: RemoteFile, download: bool) -> Path:
    path = find_local(folder, (remote.name,))
    if path is None:
        if not download:
            raise DataError(spec.source.hint(folder, downloading=False))
        return spec.source.fetch(folder, remote)  # pooch verifies the MD5 of what it downloads
    check_md5(path, file_md5(path), remote.md5, "the archive")
    return path


@functools.lru_cache(maxsize=2)
def load_event_tensors(spec: EventDataset, root: str | None, download: bool = True) -> DatasetTensors:
    """Both archives of ``spec`` as binned binary inputs (float32) and labels, checked once per process.

    The tensors are shared between runs: callers must not modify them in place.
    """
    folder = spec.source.folder(root)
    tonic_modules()  # a missing optional dependency is said before anything is downloaded
    split = {}
    for name, remote, examples in (("train", spec.train, spec.train_examples), ("test", spec.test, spec.test_examples)):
        path = _checked_archive(spec, folder, remote, download)
        inputs, labels = read_archive(path, spec, examples)
        split[name] = (torch.from_numpy(inputs).float(), torch.from_numpy(labels))
    checksums = {spec.train.name: f"md5:{spec.train.md5}", spec.test.name: f"md5:{spec.test.md5}"}
    return DatasetTensors(*split["train"], *split["test"], checksums)
