"""MNIST from the four original IDX files, and in-memory batching.

Files are looked up in torchvision's raw layout, ``<root>/MNIST/raw/<name>`` or
``<name>.gz``. The root is ``--data-dir``, else ``$BIOBENCH_DATA``, else the
user's cache directory. Missing files are fetched with pooch (checksums
verified); offline, one error says where to put them. Every file is checked
against the IDX header, so a truncated or corrupt file is an error, never a
short dataset.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

DATA_ENV = "BIOBENCH_DATA"
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# MD5 checksums of the gzipped originals (as published with torchvision's MNIST), of their
# decompressed contents (the files every local copy is checked against), and the array shapes.
FILES = {
    "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb", (60000, 28, 28)),
    "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624", (60000,)),
    "t10k-images-idx3-ubyte": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea", (10000, 28, 28)),
    "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637", (10000,)),
}
VALIDATION_SIZE = 5000


class DataError(RuntimeError):
    """The data files are missing, unreachable, truncated or corrupt."""


def default_data_root() -> Path:
    """``$BIOBENCH_DATA`` if set, else the user's cache directory for biobench."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("biobench"))


def raw_dir(root: str | os.PathLike | None) -> Path:
    """The folder holding the IDX files: ``<root>/MNIST/raw``."""
    base = Path(root).expanduser() if root else default_data_root()
    return base / "MNIST" / "raw"


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
        actual = hashlib.md5(raw).hexdigest()
        if actual != expected_md5:
            raise DataError(
                f"{path}: its content has MD5 {actual}, not the published {expected_md5}; the file is "
                "corrupt or another dataset: delete it so it can be fetched again"
            )
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
        raise DataError(f"{path}: shape {shape}, expected {expected_shape} for MNIST")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _fetch(folder: Path, name: str, md5: str) -> Path:
    import pooch

    pooch.get_logger().setLevel("WARNING")  # its "Downloading ..." line would precede our own message
    errors = []
    for mirror in MIRRORS:
        try:
            fetched = pooch.retrieve(
                url=f"{mirror}{name}.gz",
                known_hash=f"md5:{md5}",
                fname=f"{name}.gz",
                path=folder,
                progressbar=False,
            )
            return Path(fetched)
        except Exception as exc:  # network errors, hash mismatch
            errors.append(f"{mirror}{name}.gz: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    raise DataError(
        f"MNIST is not in {folder} and could not be downloaded. Put the four files "
        f"{', '.join(FILES)} (gzipped or not) in {folder}, or point --data-dir / ${DATA_ENV} at a "
        f"folder that has MNIST/raw/ with them. Download errors for {name}: " + "; ".join(errors)
    )


@dataclass(frozen=True)
class MnistArrays:
    """MNIST as uint8 arrays: train (60000, 28, 28) and test (10000, 28, 28) with labels.

    ``checksums`` maps each file to the MD5 of its IDX content (stored in every record).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    checksums: dict[str, str]


@functools.lru_cache(maxsize=2)
def load_mnist_arrays(root: str | None, download: bool = True) -> MnistArrays:
    """Load (fetching if needed and allowed) and validate the four MNIST files."""
    folder = raw_dir(root)
    arrays = {}
    for name, (gz_md5, raw_md5, shape) in FILES.items():
        path = _find(folder, name)
        if path is None:
            if not download:
                raise DataError(f"MNIST file {name!r} not found in {folder}")
            path = _fetch(folder, name, gz_md5)
        arrays[name] = read_idx(path, shape, raw_md5)
    for labels in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        if arrays[labels].max() > 9:
            raise DataError(f"{folder / labels}: label {arrays[labels].max()} outside 0..9; corrupt file")
    return MnistArrays(
        arrays["train-images-idx3-ubyte"],
        arrays["train-labels-idx1-ubyte"],
        arrays["t10k-images-idx3-ubyte"],
        arrays["t10k-labels-idx1-ubyte"],
        {name: f"md5:{raw_md5}" for name, (_, raw_md5, _) in FILES.items()},
    )


def to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[Tensor, Tensor]:
    """Flatten images to float32 in [0, 1] and labels to int64."""
    x = torch.from_numpy(np.array(images.reshape(len(images), -1))).float().div_(255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


@functools.lru_cache(maxsize=2)
def load_mnist_tensors(root: str | None, download: bool = True) -> dict[str, Any]:
    """MNIST as tensors (``train_x``, ``train_y``, ``test_x``, ``test_y``) and ``checksums``, converted once per process.

    The tensors are shared between runs: callers must not modify them in place
    (slicing and indexing, as the harness does, make views or copies).
    """
    arrays = load_mnist_arrays(root, download)
    train_x, train_y = to_tensors(arrays.train_images, arrays.train_labels)
    test_x, test_y = to_tensors(arrays.test_images, arrays.test_labels)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y, "checksums": arrays.checksums}
