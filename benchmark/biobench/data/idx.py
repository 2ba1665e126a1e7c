"""Datasets of four IDX files (MNIST and its relatives): reading, fetching and checking them.

An :class:`IdxDataset` names its four files (training and test images and labels),
their shapes and checksums, and the mirrors that serve them gzipped. The files are
looked up in torchvision's raw layout, ``<root>/<folder_name>/raw/<name>`` or
``<name>.gz``. How each local file is checked depends on what is published:

* ``content_md5`` known (MNIST): the MD5 of the decompressed IDX bytes, so a file
  is accepted gzipped or not and a re-compressed copy still passes;
* otherwise (Fashion-MNIST, KMNIST publish only the MD5 of the ``.gz`` files): the
  file must be the published ``.gz`` and its bytes must have the published MD5; a
  decompressed copy is refused, since nothing published could vouch for it.

Every file is also checked against its IDX header (type, shape, size), so a
truncated or corrupt file is an error, never a short dataset.
"""

from __future__ import annotations

import functools
import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from biobench.data.files import (
    DataError,
    DataSource,
    RemoteFile,
    check_md5,
    file_md5,
    find_local,
    md5_hex,
)


def read_idx(
    path: Path, expected_shape: tuple[int, ...] | None = None, expected_md5: str | None = None
) -> np.ndarray:
    """Read one IDX file (optionally gzipped) of unsigned bytes, validating its header, size and checksum.

    ``expected_md5`` is the MD5 of the (decompressed) IDX bytes; a file of the right
    size whose content differs (e.g. overwritten labels) is an error, never data.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot be read as {'gzip' if path.suffix == '.gz' else 'IDX'} ({exc}); "
                        "delete it so it can be fetched again") from exc
    if expected_md5 is not None:
        check_md5(path, md5_hex(raw), expected_md5, "its decompressed content")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number); the file is corrupt")
    if raw[2] != 0x08:
        raise DataError(f"{path}: IDX element type 0x{raw[2]:02x} is not unsigned byte (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_bytes = header + int(np.prod(shape))
    if len(raw) != expected_bytes:
        raise DataError(
            f"{path}: holds {len(raw)} bytes but its header {shape} needs {expected_bytes}; "
            "the file is truncated or corrupt"
        )
    if expected_shape is not None and shape != expected_shape:
        raise DataError(f"{path}: shape {shape}, expected {expected_shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@dataclass(frozen=True)
class IdxFile:
    """One IDX file of a dataset: its name, array shape and checksums.

    ``gz_md5`` is the published MD5 of ``<stem>.gz``; ``content_md5`` the MD5 of the
    decompressed bytes where it is known (then the file may be stored either way).
    """

    stem: str
    shape: tuple[int, ...]
    gz_md5: str
    content_md5: str | None = None

    @property
    def local_names(self) -> tuple[str, ...]:
        """The file names accepted on disk, in the order they are looked for."""
        if self.content_md5 is None:
            return (f"{self.stem}.gz", self.stem)
        return (self.stem, f"{self.stem}.gz")


@dataclass(frozen=True)
class IdxDataset:
    """A dataset of four IDX files (training/test images/labels) and the mirrors serving them gzipped."""

    title: str
    folder_name: str
    mirrors: tuple[str, ...]
    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile
    num_classes: int = 10

    @property
    def files(self) -> tuple[IdxFile, ...]:
        """The four files, training images first."""
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)

    @property
    def input_size(self) -> int:
        """Pixels of one image (the flattened input's size)."""
        return math.prod(self.train_images.shape[1:])

    def tensors(self, root: str | None, download: bool = True) -> DatasetTensors:
        """The dataset as tensors, checked and converted once per process (:func:`load_idx_tensors`)."""
        return load_idx_tensors(self, root, download)

    @property
    def source(self) -> DataSource:
        """Where the gzipped files are published and which files a user may put in place."""
        remote = tuple(
            RemoteFile(f"{f.stem}.gz", f.gz_md5, tuple(f"{m}{f.stem}.gz" for m in self.mirrors)) for f in self.files
        )
        hints = tuple(f"{f.stem} (or {f.stem}.gz)" if f.content_md5 else f"{f.stem}.gz" for f in self.files)
        return DataSource(self.title, (self.folder_name, "raw"), remote, hints)


#: The file names and shapes of MNIST's layout: training images/labels, then test images/labels.
MNIST_LAYOUT: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("train-images-idx3-ubyte", (60000, 28, 28)),
    ("train-labels-idx1-ubyte", (60000,)),
    ("t10k-images-idx3-ubyte", (10000, 28, 28)),
    ("t10k-labels-idx1-ubyte", (10000,)),
)


def mnist_layout(
    title: str,
    folder_name: str,
    mirrors: tuple[str, ...],
    gz_md5: tuple[str, str, str, str],
    content_md5: tuple[str, str, str, str] | None = None,
) -> IdxDataset:
    """A dataset with MNIST's four file names and shapes (:data:`MNIST_LAYOUT`) and 10 classes.

    ``gz_md5`` (and ``content_md5`` where known) list the checksums in the layout's order.
    """
    contents = content_md5 or (None,) * len(MNIST_LAYOUT)
    files = [IdxFile(stem, shape, gz, raw) for (stem, shape), gz, raw in zip(MNIST_LAYOUT, gz_md5, contents, strict=True)]
    return IdxDataset(title, folder_name, tuple(mirrors), *files)


@dataclass(frozen=True)
class ImageArrays:
    """A dataset's training and test images as uint8 arrays with their labels.

    ``checksums`` maps each file read to ``md5:<hex>``, the checksum it was checked
    against (stored in every record).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    checksums: dict[str, str]


@dataclass(frozen=True)
class DatasetTensors:
    """A dataset's splits as tensors: inputs float32 in [0, 1], flattened; int64 labels; checksums."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    checksums: dict[str, str]


def _read_checked(spec: IdxDataset, folder: Path, f: IdxFile, download: bool) -> tuple[np.ndarray, str, str]:
    """One file's array, and the name and checksum it was checked against."""
    source = spec.source
    path = find_local(folder, f.local_names)
    if path is None:
        if not download:
            raise DataError(source.hint(folder, downloading=False))
        remote = next(r for r in source.files if r.name == f"{f.stem}.gz")
        path = source.fetch(folder, remote)
    if f.content_md5 is not None:
        return read_idx(path, f.shape, f.content_md5), f.stem, f.content_md5
    if path.suffix != ".gz":
        raise DataError(
            f"{path}: {spec.title} publishes the checksums of its gzipped files only, so a decompressed copy "
            f"cannot be checked; put the published {f.stem}.gz in {folder} instead"
        )
    check_md5(path, file_md5(path), f.gz_md5, "the gzipped file")
    return read_idx(path, f.shape), path.name, f.gz_md5


@functools.lru_cache(maxsize=4)
def load_idx_arrays(spec: IdxDataset, root: str | None, download: bool = True) -> ImageArrays:
    """Load (fetching if needed and allowed) and check the four files of ``spec``."""
    folder = spec.source.folder(root)
    arrays, checksums = [], {}
    for f in spec.files:
        array, name, md5 = _read_checked(spec, folder, f, download)
        arrays.append(array)
        checksums[name] = f"md5:{md5}"
    for f, labels in ((spec.train_labels, arrays[1]), (spec.test_labels, arrays[3])):
        if labels.size and labels.max() >= spec.num_classes:
            raise DataError(f"{folder / f.stem}: label {labels.max()} outside 0..{spec.num_classes - 1}; corrupt file")
    return ImageArrays(*arrays, checksums)


def to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[Tensor, Tensor]:
    """Flatten images to float32 in [0, 1] and labels to int64."""
    x = torch.from_numpy(np.array(images.reshape(len(images), -1))).float().div_(255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def arrays_to_tensors(arrays: ImageArrays) -> DatasetTensors:
    """Both splits of ``arrays`` as tensors (see :func:`to_tensors`)."""
    train_x, train_y = to_tensors(arrays.train_images, arrays.train_labels)
    test_x, test_y = to_tensors(arrays.test_images, arrays.test_labels)
    return DatasetTensors(train_x, train_y, test_x, test_y, dict(arrays.checksums))


@functools.lru_cache(maxsize=4)
def load_idx_tensors(spec: IdxDataset, root: str | None, download: bool = True) -> DatasetTensors:
    """The dataset of ``spec`` as tensors, converted once per process.

    The tensors are shared between runs: callers must not modify them in place
    (slicing and indexing, as the harness does, make views or copies).
    """
    return arrays_to_tensors(load_idx_arrays(spec, root, download))
