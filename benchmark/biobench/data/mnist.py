"""MNIST from the four original IDX files (see :mod:`biobench.data.idx` for how they are read and checked).

Files are looked up in torchvision's raw layout, ``<root>/MNIST/raw/<name>`` or
``<name>.gz``. The root is ``--data-dir``, else ``$BIOBENCH_DATA``, else the
user's cache directory. Missing files are fetched with pooch (checksums
verified); offline, one error says where to put them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from biobench.data.files import data_folder
from biobench.data.idx import ImageArrays, load_idx_arrays, load_idx_tensors, mnist_layout

#: MD5 checksums of the gzipped originals (as published with torchvision's MNIST) and of their
#: decompressed contents (the bytes every local copy is checked against).
MNIST = mnist_layout(
    "MNIST",
    "MNIST",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    gz_md5=("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
    content_md5=("6bbc9ace898e44ae57da46a324031adb", "a25bea736e30d166cdddb491f175f624",
                 "2646ac647ad5339dbf082846283269ea", "27ae3e4e09519cfbb04c329615203637"),
)
#: The validation split of every task with a training file: its last VALIDATION_SIZE examples.
VALIDATION_SIZE = 5000

#: MNIST's arrays (the name older code uses).
MnistArrays = ImageArrays


def raw_dir(root: str | os.PathLike | None) -> Path:
    """The folder holding the IDX files: ``<root>/MNIST/raw``."""
    return data_folder(root, MNIST.folder_name, "raw")


def load_mnist_arrays(root: str | None, download: bool = True) -> ImageArrays:
    """Load (fetching if needed and allowed) and validate the four MNIST files (cached per process)."""
    return load_idx_arrays(MNIST, root, download)


def load_mnist_tensors(root: str | None, download: bool = True) -> dict[str, Any]:
    """MNIST as tensors (``train_x``, ``train_y``, ``test_x``, ``test_y``) and ``checksums``, converted once per process.

    The tensors are shared between runs: callers must not modify them in place.
    """
    t = load_idx_tensors(MNIST, root, download)
    return {"train_x": t.train_x, "train_y": t.train_y, "test_x": t.test_x, "test_y": t.test_y,
            "checksums": dict(t.checksums)}
