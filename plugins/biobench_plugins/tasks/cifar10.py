"""The CIFAR-10 task: 10 classes of 32x32 colour images, flattened to 3,072 inputs in [0, 1].

Krizhevsky (2009), Learning multiple layers of features from tiny images (technical
report, University of Toronto). Read from the python pickle batches in
``<root>/cifar-10-batches-py/`` (torchvision's layout), each checked against its MD5
as torchvision publishes it (``CIFAR10.train_list``/``test_list``) before it is
unpickled; missing batches are extracted from ``cifar-10-python.tar.gz`` (in that
folder, or downloaded there; MD5 ``c58f3010...``, torchvision's ``tgz_md5``).

Inputs keep the published row layout: the 1,024 red values, then green, then blue,
each 32x32 row-major, scaled to [0, 1]; no normalisation or augmentation. Splits:
the first 45,000 training images (``data_batch_1`` ... the first half of
``data_batch_5``) train, the last 5,000 validate, the 10,000 test images test.
"""

from __future__ import annotations

from biobench import CifarDataset, FixedSplitTask, PickleBatch, RemoteFile, hookimpl

#: The batches and their MD5s, and the archive holding them (torchvision's ``datasets.CIFAR10``).
CIFAR10 = CifarDataset(
    title="CIFAR-10",
    folder_name="cifar-10-batches-py",
    archive=RemoteFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                       ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)),
    train=(
        PickleBatch("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        PickleBatch("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        PickleBatch("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        PickleBatch("data_batch_4", "634d18415352ddfa80567beed471001a"),
        PickleBatch("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
    ),
    test=(PickleBatch("test_batch", "40351d587109b95175f43aff81a1287e"),),
)


class Cifar10(FixedSplitTask):
    """CIFAR-10: 45,000 training / 5,000 validation / 10,000 test colour images, flattened."""

    name = "cifar10"
    description = "CIFAR-10 colour images, 10 classes, 3,072 inputs (45k train / 5k validation / 10k test)"
    dataset = CIFAR10
    validation_note = "images of the training batches (the second half of data_batch_5)"


@hookimpl
def biobench_register_tasks() -> list[type[FixedSplitTask]]:
    """Register the CIFAR-10 task."""
    return [Cifar10]
