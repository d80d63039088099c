"""Running a model over a loader: rows come back in dataset order whatever the batching."""
import numpy as np
import paddle

from paddle_dynafast import data
from paddle_dynafast.model.over_loader import accuracy, predict


def test_rows_come_back_in_dataset_order():
    lengths = [5, 2, 9, 3, 7, 1, 4]
    features = [data.Features([2] + [5] * n, [0] * (n + 1), i % 2, False) for i, n in enumerate(lengths)]
    loader = data.make_loader(features, 0, 3, shuffle=False)  # batched longest first
    out = predict(lambda batch: paddle.cast((batch["input_ids"] != 0).sum(axis=1, keepdim=True), "float32"), loader)
    assert out[:, 0].tolist() == [n + 1 for n in lengths]


def test_accuracy():
    assert accuracy(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), [1, 0, 0]) == 2 / 3
