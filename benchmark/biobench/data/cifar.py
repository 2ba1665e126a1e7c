"""CIFAR-style datasets from their python pickle batches (``cifar-10-batches-py``).

A :class:`CifarDataset` names its batch files, their published MD5s and the
archive that holds them. The batches are looked up in torchvision's layout,
``<root>/<folder_name>/<batch>``; when some are missing, the archive is taken from
that folder (checked against its published MD5) or downloaded there with pooch,
and the batches are extracted from it by name. Every batch is checked against its
published MD5 *before* it is unpickled, and unpickled by an unpickler that builds
nothing but NumPy arrays, lists, numbers and strings; its arrays are then checked
(uint8, one row of ``3 * 32 * 32`` values per image, one label per image, labels
in range).

A row holds the image's red, green and blue planes one after the other, each
row-major (the published layout); it is kept as it is, scaled to [0, 1].
"""

from __future__ import annotations

import functools
import io
import math
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from biobench.data.files import DataError, DataSource, RemoteFile, check_md5, file_md5, md5_hex
from biobench.data.idx import DatasetTensors, ImageArrays, arrays_to_tensors


@dataclass(frozen=True)
class PickleBatch:
    """One batch file: its name, published MD5 and number of images."""

    name: str
    md5: str
    examples: int = 10000


@dataclass(frozen=True)
class CifarDataset:
    """Training and test batches, the archive holding them and the images' shape (see the module docstring)."""

    title: str
    folder_name: str
    archive: RemoteFile
    train: tuple[PickleBatch, ...]
    test: tuple[PickleBatch, ...]
    label_key: str = "labels"
    num_classes: int = 10
    image_shape: tuple[int, int, int] = (3, 32, 32)

    @property
    def input_size(self) -> int:
        """Values of one flattened image (channels x height x width)."""
        return math.prod(self.image_shape)

    @property
    def source(self) -> DataSource:
        """The batches' folder, what a user may put there, and the published archive."""
        names = tuple(b.name for b in self.train + self.test)
        return DataSource(self.title, (self.folder_name,), (self.archive,), (*names, f"or the archive {self.archive.name} that holds them"))

    def tensors(self, root: str | None, download: bool = True) -> DatasetTensors:
        """The dataset as tensors, checked and converted once per process (:func:`load_cifar_tensors`)."""
        return load_cifar_tensors(self, root, download)


#: The only globals a CIFAR batch may name: NumPy's array reconstruction (both module paths) and the
#: codec Python 3 pickles bytes with.
SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class BatchUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global outside :data:`SAFE_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        """The global ``module.name`` if it is allowed, else an error."""
        if (module, name) not in SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data batch")
        return super().find_class(module, name)


def read_batch(path: Path, batch: PickleBatch, spec: CifarDataset) -> tuple[np.ndarray, np.ndarray]:
    """One batch's images ``(examples, input_size)`` uint8 and labels int64, checked (module docstring)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from exc
    check_md5(path, md5_hex(raw), batch.md5)
    try:
        entry = BatchUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except Exception as exc:  # truncated or malformed pickle, or a refused global
        raise DataError(f"{path}: not a readable pickle batch ({type(exc).__name__}: {exc}); the file is corrupt") from exc
    if not isinstance(entry, dict):
        raise DataError(f"{path}: holds a {type(entry).__name__}, not a batch dictionary")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
    images, labels = entry.get("data"), entry.get(spec.label_key)
    shape = (batch.examples, spec.input_size)
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.shape != shape:
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise DataError(f"{path}: 'data' is {got}, expected uint8 {shape}")
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if labels.shape != (batch.examples,) or labels.min(initial=0) < 0 or labels.max(initial=0) >= spec.num_classes:
        raise DataError(f"{path}: {spec.label_key!r} is not {batch.examples} labels in 0..{spec.num_classes - 1}")
    return images, labels


def extract_batches(archive: Path, folder: Path, names: list[str]) -> None:
    """Write the members of ``archive`` whose base names are ``names`` into ``folder`` (atomically, by name only)."""
    wanted = set(names)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = PurePosixPath(member.name).name
                if member.isfile() and base in wanted:
                    data = tar.extractfile(member).read()
                    partial = folder / f"{base}.partial"
                    partial.write_bytes(data)
                    os.replace(partial, folder / base)
                    wanted.discard(base)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{archive}: cannot be unpacked ({exc}); delete it so it can be fetched again") from exc
    if wanted:
        raise DataError(f"{archive}: does not hold {', '.join(sorted(wanted))}; it is another or a damaged archive")


@functools.lru_cache(maxsize=2)
def load_cifar_arrays(spec: CifarDataset, root: str | None, download: bool = True) -> ImageArrays:
    """Load (extracting or fetching if needed and allowed) and check every batch of ``spec``."""
    source = spec.source
    folder = source.folder(root)
    missing = [b.name for b in spec.train + spec.test if not (folder / b.name).is_file()]
    if missing:
        archive = folder / spec.archive.name
        if archive.is_file():
            check_md5(archive, file_md5(archive), spec.archive.md5, "the archive")
        elif not download:
            raise DataError(source.hint(folder, downloading=False))
        else:
            archive = source.fetch(folder, spec.archive)
        extract_batches(archive, folder, missing)
    parts = {name: [read_batch(folder / b.name, b, spec) for b in batches] for name, batches in (("train", spec.train), ("test", spec.test))}
    images = {name: np.concatenate([p[0] for p in read]) for name, read in parts.items()}
    labels = {name: np.concatenate([p[1] for p in read]) for name, read in parts.items()}
    checksums = {b.name: f"md5:{b.md5}" for b in spec.train + spec.test}
    return ImageArrays(images["train"], labels["train"], images["test"], labels["test"], checksums)


@functools.lru_cache(maxsize=2)
def load_cifar_tensors(spec: CifarDataset, root: str | None, download: bool = True) -> DatasetTensors:
    """The dataset of ``spec`` as tensors (inputs in [0, 1], flattened), converted once per process."""
    return arrays_to_tensors(load_cifar_arrays(spec, root, download))
