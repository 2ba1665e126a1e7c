"""The N-MNIST task: MNIST digits recorded by an event camera, binned into time steps for spiking networks.

Orchard, Jayawant, Cohen & Thakor (2015), Converting static image datasets to spiking
neuromorphic datasets using saccades, Frontiers in Neuroscience 9:437. An ATIS sensor
(34x34 pixels, 2 polarities) watched each MNIST digit during three saccades of about
100 ms. The archives ``train.zip`` (60,000 recordings) and ``test.zip`` (10,000) are
read in place from ``<root>/NMNIST/`` and checked against the MD5s tonic publishes
(``tonic.datasets.NMNIST``); missing ones are downloaded from the addresses tonic uses.
Reading needs tonic (``pip install 'biobench[events]'``).

**Inputs** (:mod:`biobench.data.events`): each recording is pooled 2x2
(17x17 pixels x 2 polarities = 578 features per bin, which keeps the 70,000 examples
near 1.6 GB as float32 instead of 6.5 GB) and split into ``INPUT_STEPS`` = 10 bins of
equal duration over the recording (tonic's ``ToFrame(n_time_bins=10)``); a feature is
1 in a bin where at least one event fell there, else 0 (a spike, not a count, so
inputs stay in [0, 1]). The task declares ``input_steps = 10``: its 5,780 inputs are
10 bins of 578, which an architecture with the ``timed_input`` capability (the
spiking network) feeds one bin per time step, as given; architectures without it are
declared unsupported. Ten steps are the spiking network's ``ci`` presentation length.

Splits: recordings in the order of the number in their file name; the first 55,000
training recordings train, the last 5,000 validate, the 10,000 test recordings test.
"""

from __future__ import annotations

from biobench import EventDataset, FixedSplitTask, RemoteFile, hookimpl

#: Time bins per recording (the task's ``input_steps``).
INPUT_STEPS = 10
#: The archives, their MD5s and addresses as tonic 1.7 publishes them (``tonic.datasets.NMNIST``).
BASE_URL = "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"
NMNIST = EventDataset(
    title="N-MNIST",
    folder_name="NMNIST",
    train=RemoteFile("train.zip", "20959b8e626244a1b502305a9e6e2031",
                     (f"{BASE_URL}39c25547-014b-4137-a934-9d29fa53c7a0/file_downloaded",)),
    test=RemoteFile("test.zip", "69ca8762b2fe404d9b9bad1103e97832",
                    (f"{BASE_URL}05a4d654-7e03-4c15-bdfa-9bb2bcbea494/file_downloaded",)),
    train_examples=60000,
    test_examples=10000,
    sensor_size=(34, 34, 2),
    downsample=2,
    input_steps=INPUT_STEPS,
)


class Nmnist(FixedSplitTask):
    """N-MNIST: event-camera digits as 10 binary time bins of 2x17x17 spikes (55k / 5k / 10k)."""

    name = "nmnist"
    description = "N-MNIST event-camera digits, 10 time bins of 2x17x17 spikes, for timed-input (spiking) nets"
    validation_note = "recordings of the training archive, in file-name order"
    dataset = NMNIST


@hookimpl
def biobench_register_tasks() -> list[type[FixedSplitTask]]:
    """Register the N-MNIST task."""
    return [Nmnist]
