"""Datasets published in MNIST's format: Fashion-MNIST and KMNIST (10 classes, 28x28 grey-scale, flattened to 784).

* ``fashion-mnist``: Xiao, Rasul & Vollgraf (2017), Fashion-MNIST: a novel image dataset
  for benchmarking machine learning algorithms, arXiv:1708.07747 (Zalando article images).
* ``kmnist``: Clanuwat et al. (2018), Deep learning for classical Japanese literature,
  arXiv:1812.01718 (cursive Kuzushiji characters).

Both have MNIST's four IDX file names, layout and sizes. They are read from
``<root>/FashionMNIST/raw/`` and ``<root>/KMNIST/raw/`` (torchvision's layout) as the
published ``.gz`` files, whose MD5s (torchvision's ``FashionMNIST.resources`` and
``KMNIST.resources``; Fashion-MNIST's README lists the same) are the only published
checksums: a decompressed copy is refused, since nothing published vouches for it.
Splits, as for MNIST: the first 55,000 training images train, the last 5,000 validate,
the 10,000 test images test.
"""

from __future__ import annotations

from biobench import FixedSplitTask, hookimpl, mnist_layout

#: Fashion-MNIST: its files' published MD5s in MNIST's file order, and its mirrors (the dataset's
#: own repository over HTTPS, then torchvision's).
FASHION_MNIST = mnist_layout(
    "Fashion-MNIST", "FashionMNIST",
    mirrors=("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
             "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
    gz_md5=("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
)
#: KMNIST: its files' published MD5s in MNIST's file order, and the dataset's server (HTTPS first).
KMNIST = mnist_layout(
    "KMNIST", "KMNIST",
    mirrors=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/", "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
    gz_md5=("bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
            "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134"),
)


class FashionMnist(FixedSplitTask):
    """Fashion-MNIST: 55,000 training / 5,000 validation / 10,000 test images of 10 clothing classes."""

    name = "fashion-mnist"
    description = "Fashion-MNIST clothing images, 10 classes (55k train / 5k validation / 10k test)"
    dataset = FASHION_MNIST


class Kmnist(FixedSplitTask):
    """KMNIST: 55,000 training / 5,000 validation / 10,000 test images of 10 Kuzushiji characters."""

    name = "kmnist"
    description = "Kuzushiji-MNIST cursive Japanese characters, 10 classes (55k / 5k / 10k)"
    dataset = KMNIST


@hookimpl
def biobench_register_tasks() -> list[type[FixedSplitTask]]:
    """Register the Fashion-MNIST and KMNIST tasks."""
    return [FashionMnist, Kmnist]
