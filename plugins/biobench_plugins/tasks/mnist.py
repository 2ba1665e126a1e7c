"""The MNIST task: 10-class handwritten digits, 28x28 grey-scale inputs flattened to 784."""

from __future__ import annotations

from biobench import MNIST, FixedSplitTask, hookimpl, split_options
from biobench_plugins.tasks.mnist_setups import MNIST_SETUPS


class Mnist(FixedSplitTask):
    """MNIST: train on the first 55,000 training images, validate on the last 5,000, test on 10,000."""

    name = "mnist"
    description = "MNIST digits, 10 classes (55k train / 5k validation / 10k test)"
    dataset = MNIST
    defaults = split_options(
        "softmax cross-entropy, the usual MNIST loss; bce and mse (sigmoid outputs) "
        "are the losses of Lillicrap et al. 2016 and Nøkland 2016"
    )
    #: Published setups that compare several rules on one network (see ``mnist_setups``).
    published_setups = MNIST_SETUPS


@hookimpl
def biobench_register_tasks() -> list[type[FixedSplitTask]]:
    """Register the MNIST task."""
    return [Mnist]
