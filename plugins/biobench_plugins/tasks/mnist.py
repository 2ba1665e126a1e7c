"""The MNIST task: 10-class handwritten digits, 28x28 grey-scale inputs flattened to 784."""

from __future__ import annotations

from biobench import (
    LOSSES,
    VALIDATION_SIZE,
    Hyperparameter,
    Task,
    TaskData,
    hookimpl,
    load_mnist_tensors,
)


class Mnist(Task):
    """MNIST: train on the first 55,000 training images, validate on the last 5,000, test on 10,000."""

    name = "mnist"
    description = "MNIST digits, 10 classes (55k train / 5k validation / 10k test)"
    num_classes = 10
    input_size = 784
    defaults = {
        "download": Hyperparameter(True, "fetch the files with pooch when they are missing"),
        "loss": Hyperparameter(
            "cross_entropy", "softmax cross-entropy, the usual MNIST loss; bce and mse (sigmoid outputs) "
            "are the losses of Lillicrap et al. 2016 and Nøkland 2016", choices=tuple(LOSSES),
        ),
    }

    def load(self, data_dir: str | None) -> TaskData:
        """Load MNIST into memory; inputs in [0, 1], flattened."""
        tensors = load_mnist_tensors(None if data_dir is None else str(data_dir), bool(self.config["download"]))
        train_x, train_y = tensors["train_x"], tensors["train_y"]
        test_x, test_y = tensors["test_x"], tensors["test_y"]
        split = len(train_x) - VALIDATION_SIZE
        return TaskData(
            train_x=train_x[:split],
            train_y=train_y[:split],
            val_x=train_x[split:],
            val_y=train_y[split:],
            test_x=test_x,
            test_y=test_y,
            info={
                "validation": f"last {VALIDATION_SIZE} images of the training file",
                "checksums": dict(tensors["checksums"]),
            },
        )


@hookimpl
def biobench_register_tasks() -> list[type[Task]]:
    """Register the MNIST task."""
    return [Mnist]
