"""Batching: padding with the pad id, length-grouped batches, the loader's tensors, the dataset's items."""

import numpy as np

from helpers import write_sentiment_data
from paddle_dynafast.data.batching import Collator, FeatureDataset, LengthGroupedBatchSampler, make_loader
from paddle_dynafast.data.encoding import Features, encode
from paddle_dynafast.data.readers import load_splits


def test_collator_pads_with_the_pad_id():
    features = [Features([2, 9, 3], [0, 0, 0], 1, False), Features([2, 3], [0, 0], 0, False)]
    batch = Collator(pad_token_id=0)([(5, features[0]), (7, features[1])])
    np.testing.assert_array_equal(batch["input_ids"], [[2, 9, 3], [2, 3, 0]])
    np.testing.assert_array_equal(batch["labels"], [1, 0])
    np.testing.assert_array_equal(batch["index"], [5, 7])
    assert batch["input_ids"].dtype == np.int64


def test_length_grouped_sampler():
    lengths = list(np.random.default_rng(0).integers(3, 60, size=1000))
    sampler = LengthGroupedBatchSampler(lengths, batch_size=32, shuffle=True, seed=7, pool_batches=4)
    epoch0 = sampler.batches()
    assert sorted(i for b in epoch0 for i in b) == list(range(1000)) and len(epoch0) == len(sampler) == 32
    assert sampler.batches() == epoch0  # same epoch, same order (resume relies on it)
    sampler.set_epoch(1)
    assert sampler.batches() != epoch0
    # grouping saves padding against a plain shuffle
    padded = sum(len(b) * max(lengths[i] for i in b) for b in epoch0)
    order = np.random.default_rng(1).permutation(1000)
    plain = sum(len(b) * max(lengths[i] for i in b) for b in np.array_split(order, 32))
    assert padded < 0.8 * plain
    evaluation = LengthGroupedBatchSampler(lengths, batch_size=100, shuffle=False).batches()
    flat = [lengths[i] for b in evaluation for i in b]
    assert flat == sorted(lengths, reverse=True)


def test_loader_yields_tensors_in_batches(tokenizer, tmp_path):
    write_sentiment_data(tmp_path / "d", n_train=50)
    examples = load_splits(tmp_path / "d")["train"]
    features = encode(examples, tokenizer, 16, labels=["0", "1"])
    loader = make_loader(features, tokenizer.pad_token_id, batch_size=8, shuffle=False)
    seen = []
    for batch in loader:
        assert list(batch["input_ids"].shape)[0] <= 8 and str(batch["input_ids"].dtype) == "paddle.int64"
        seen.extend(batch["index"].numpy().tolist())
    assert sorted(seen) == list(range(50))


def test_the_dataset_gives_each_item_with_its_index():
    features = [Features([2, 9, 9, 3], [0, 0, 0, 0], 1, False), Features([2, 3], [0, 0], 0, True)]
    dataset = FeatureDataset(features)
    assert len(dataset) == 2 and dataset.lengths == [4, 2]
    assert dataset[1] == (1, features[1]) and list(dataset) == [(0, features[0]), (1, features[1])]
