"""Data files for tasks: reading and fetching the original dataset files, checked against their checksums."""

from biobench.data.mnist import (
    DATA_ENV,
    VALIDATION_SIZE,
    DataError,
    MnistArrays,
    default_data_root,
    load_mnist_arrays,
    load_mnist_tensors,
    raw_dir,
    read_idx,
    to_tensors,
)

__all__ = [
    "DATA_ENV",
    "VALIDATION_SIZE",
    "DataError",
    "MnistArrays",
    "default_data_root",
    "load_mnist_arrays",
    "load_mnist_tensors",
    "raw_dir",
    "read_idx",
    "to_tensors",
]
