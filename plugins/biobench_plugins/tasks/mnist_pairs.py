"""Binary MNIST digit pairs, 0 vs 1 ... 0 vs 5, the tasks of Gupta (2020).

Task ``mnist-AvB`` keeps the images of digits A and B only and labels A as class 0
and B as class 1. The splits follow the ``mnist`` task: the first 55,000 training
images (filtered) train, the last 5,000 (filtered) validate, the test file
(filtered) tests.

**Output head.** By default the network has one output unit, as in Gupta (2020)
(784-32-16-1: "the Z_k for final output neuron will be +1, if y = 1 and -1, if
y = 0"): the label is 1 when its logit is positive, and the loss is binary
cross-entropy of the sigmoid unit against the label (the paper's backprop
baseline). ``output_units=2`` gives one unit per digit instead (argmax readout),
with ``loss`` ``cross_entropy``, ``bce`` (against the one-hot target) or ``mse``.
Gupta (2020) does not say which digit of a pair is ``y = 1``; here it is the
second one (``B``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from torch import Tensor

from biobench import (
    LOSSES,
    VALIDATION_SIZE,
    Hyperparameter,
    Task,
    TaskData,
    hookimpl,
    load_mnist_arrays,
    to_tensors,
)


class MnistDigitPair(Task):
    """Two MNIST digits as a binary task: ``first_digit`` -> class 0, ``second_digit`` -> class 1."""

    name = "mnist-pair"
    description = "MNIST digit pair (binary)"
    num_classes = 2
    input_size = 784
    first_digit: ClassVar[int] = 0
    second_digit: ClassVar[int] = 1
    defaults = {
        "download": Hyperparameter(True, "fetch the files with pooch when they are missing"),
        "output_units": Hyperparameter(
            1,
            "Gupta (2020), sections 2-3: 784-32-16-1, one output neuron whose associativity is "
            "+1 for y = 1 and -1 for y = 0; 2 gives one unit per digit",
            choices=(1, 2),
        ),
        "loss": Hyperparameter(
            "bce",
            "Gupta (2020), section 3: the backprop baseline back-propagates binary cross-entropy "
            "(on the one sigmoid output unit; against one-hot targets with two units)",
            choices=tuple(LOSSES),
        ),
    }

    def __init__(self, **overrides: Any) -> None:
        """Check the options; cross-entropy needs one output unit per digit."""
        super().__init__(**overrides)
        if self.config["output_units"] == 1 and self.config["loss"] == "cross_entropy":
            raise ValueError(
                f"task {self.name!r}: loss 'cross_entropy' needs one output unit per digit "
                "(output_units=2); with one output unit use loss 'bce' or 'mse'"
            )

    def _select(self, images: np.ndarray, labels: np.ndarray) -> tuple[Tensor, Tensor]:
        keep = (labels == self.first_digit) | (labels == self.second_digit)
        binary = (labels[keep] == self.second_digit).astype(np.int64)
        return to_tensors(images[keep], binary)

    def load(self, data_dir: str | None) -> TaskData:
        """Load MNIST and keep the two digits; inputs in [0, 1], flattened; labels 0/1."""
        arrays = load_mnist_arrays(
            None if data_dir is None else str(data_dir), bool(self.config["download"])
        )
        split = len(arrays.train_images) - VALIDATION_SIZE
        train_x, train_y = self._select(arrays.train_images[:split], arrays.train_labels[:split])
        val_x, val_y = self._select(arrays.train_images[split:], arrays.train_labels[split:])
        test_x, test_y = self._select(arrays.test_images, arrays.test_labels)
        return TaskData(
            train_x=train_x,
            train_y=train_y,
            val_x=val_x,
            val_y=val_y,
            test_x=test_x,
            test_y=test_y,
            info={
                "digits": [self.first_digit, self.second_digit],
                "labels": f"digit {self.first_digit} -> 0, digit {self.second_digit} -> 1",
                "output": (
                    f"one unit, label {self.second_digit} when its logit > 0"
                    if self.config["output_units"] == 1
                    else "one unit per digit, argmax"
                ),
                "validation": f"last {VALIDATION_SIZE} images of the training file, filtered",
                "checksums": dict(arrays.checksums),
            },
        )


def digit_pair_task(first: int, second: int) -> type[MnistDigitPair]:
    """The task class for ``first`` vs ``second`` (named ``mnist-{first}v{second}``)."""
    return type(
        f"Mnist{first}v{second}",
        (MnistDigitPair,),
        {
            "name": f"mnist-{first}v{second}",
            "description": f"MNIST digits {first} vs {second}, binary (Gupta 2020's task)",
            "first_digit": first,
            "second_digit": second,
            "__doc__": f"MNIST digits {first} (class 0) vs {second} (class 1).",
            "__module__": __name__,
        },
    )


#: The five pairs of Gupta (2020), Figure 2.
PAIRS = ((0, 1), (0, 2), (0, 3), (0, 4), (0, 5))


@hookimpl
def biobench_register_tasks() -> list[type[Task]]:
    """Register the binary digit-pair tasks 0 vs 1 ... 0 vs 5."""
    return [digit_pair_task(first, second) for first, second in PAIRS]
