"""A building block of tasks read from a dataset's training and test files.

:class:`FixedSplitTask` turns a dataset's tensors into the three splits the
harness uses, the same way for every such dataset: the training file's last
:data:`VALIDATION_SIZE` examples validate, the rest train, the test file tests.
It declares the options every such task has (``download``, ``loss``). A task
plugin subclasses it and names its ``dataset``: an object that knows its number of
classes, its input size (and time bins) and how to load itself as tensors
(:class:`SplitDataset`: :class:`~biobench.data.idx.IdxDataset`,
:class:`~biobench.data.cifar.CifarDataset`, :class:`~biobench.data.events.EventDataset`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from biobench.data.files import DataError
from biobench.data.idx import DatasetTensors
from biobench.data.mnist import VALIDATION_SIZE
from biobench.plugin_api.hyperparameters import Hyperparameter
from biobench.plugin_api.interfaces import LOSSES, Task, TaskData


def split_options(loss_source: str) -> dict[str, Hyperparameter]:
    """The options of a task with fixed splits: ``download`` and ``loss`` (its default's source given)."""
    return {
        "download": Hyperparameter(True, "fetch the files with pooch when they are missing"),
        "loss": Hyperparameter("cross_entropy", loss_source, choices=tuple(LOSSES)),
    }


class SplitDataset(Protocol):
    """What :class:`FixedSplitTask` needs of its dataset."""

    num_classes: int

    @property
    def input_size(self) -> int:
        """Features of one flattened input."""

    def tensors(self, root: str | None, download: bool = True) -> DatasetTensors:
        """The training and test tensors, checked against the published checksums."""


class FixedSplitTask(Task):
    """Training examples but the last ``validation_size`` train, those validate, the test file tests.

    ``num_classes``, ``input_size`` and ``input_steps`` follow from ``dataset``.
    """

    #: The dataset the task reads.
    dataset: ClassVar[SplitDataset]

    defaults = split_options(
        "softmax cross-entropy, the usual loss of multi-class classification; bce and mse (sigmoid "
        "outputs) for rules written for them (Lillicrap et al. 2016, Nøkland 2016)"
    )
    #: What the validation examples are, in the record's ``data.validation``.
    validation_note: ClassVar[str] = "images of the training file"
    #: How many of the last training examples validate.
    validation_size: ClassVar[int] = VALIDATION_SIZE

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("dataset")
        if spec is not None:
            cls.num_classes = int(spec.num_classes)
            cls.input_size = int(spec.input_size)
            cls.input_steps = int(getattr(spec, "input_steps", 1))

    def tensors(self, data_dir: str | None) -> DatasetTensors:
        """The dataset's training and test tensors (fetched if allowed by ``config["download"]``)."""
        return self.dataset.tensors(data_dir, bool(self.config["download"]))

    def load(self, data_dir: str | None) -> TaskData:
        """Load the dataset and cut the validation split from the end of the training examples."""
        t = self.tensors(None if data_dir is None else str(data_dir))
        size = self.validation_size
        if len(t.train_x) <= size:
            raise DataError(f"{self.name}: {len(t.train_x)} training examples, too few for {size} to validate")
        split = len(t.train_x) - size
        return TaskData(
            train_x=t.train_x[:split],
            train_y=t.train_y[:split],
            val_x=t.train_x[split:],
            val_y=t.train_y[split:],
            test_x=t.test_x,
            test_y=t.test_y,
            info={"validation": f"last {size} {self.validation_note}", "checksums": dict(t.checksums)},
        )

