"""Batches of encoded examples: padded, grouped by length, shared among data-parallel ranks."""
from __future__ import annotations

import random
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import paddle

from .encoding import Features


class FeatureDataset(paddle.io.Dataset):
    """Encoded examples; item ``i`` is ``(index, Features)`` so sorted batches can be put back in order."""

    def __init__(self, features: Sequence[Features]):
        super().__init__()
        self.features = list(features)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int):
        return index, self.features[index]

    @property
    def lengths(self) -> List[int]:
        return [len(f.input_ids) for f in self.features]


class Collator:
    """Pads a batch to its longest example: ``input_ids``/``token_type_ids`` ``[batch, seq]`` int64."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, items) -> Dict[str, np.ndarray]:
        indices, features = zip(*items)
        width = max(len(f.input_ids) for f in features)
        input_ids = np.full((len(features), width), self.pad_token_id, dtype="int64")  # [batch, seq]
        token_type_ids = np.zeros((len(features), width), dtype="int64")  # [batch, seq]
        for row, f in enumerate(features):
            input_ids[row, : len(f.input_ids)] = f.input_ids
            token_type_ids[row, : len(f.token_type_ids)] = f.token_type_ids
        return {
            "input_ids": input_ids,
            "token_type_ids": token_type_ids,
            "labels": np.array([f.label for f in features], dtype="int64"),  # [batch]
            "index": np.array(indices, dtype="int64"),  # [batch], position in the dataset
        }


class LengthGroupedBatchSampler(paddle.io.DistributedBatchSampler):
    """Batches of similar length, so padding wastes little work; shared among data-parallel ranks.

    For training (``shuffle=True``) the examples are shuffled with ``seed + epoch``,
    cut into pools of ``pool_batches`` batches, sorted by length inside each pool,
    and the batches are shuffled again: random, but cheap to pad. For evaluation
    the whole split is sorted longest first. Call :meth:`set_epoch` each epoch;
    the order of an epoch is a function of the seed and the epoch alone, so a
    resumed run sees the same batches.

    ``batch_size`` is the global batch. With ``num_replicas`` ranks (default:
    the ``paddle.distributed`` world), a training batch is split evenly, rank
    ``r`` taking the ``r``-th ``batch_size / num_replicas`` examples, so that
    the ranks together take exactly one process's step (the last, short batch
    of an epoch is dropped if its size does not divide by the number of ranks);
    an evaluation batch goes whole to one rank in turn (gather the results with
    :func:`paddle_dynafast.distributed.gather`).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0,
                 pool_batches: int = 50, drop_last: bool = False, num_replicas: Optional[int] = None,
                 rank: Optional[int] = None):
        super().__init__(dataset=list(lengths), batch_size=batch_size, num_replicas=num_replicas, rank=rank,
                         shuffle=shuffle, drop_last=drop_last)
        if shuffle and batch_size % self.nranks:
            raise ValueError(f"batch size {batch_size} does not divide among {self.nranks} processes")
        self.lengths = list(lengths)
        self.seed = seed
        self.pool_batches = pool_batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> List[List[int]]:
        """The batches of one process holding all the data."""
        order = list(range(len(self.lengths)))
        if not self.shuffle:
            order.sort(key=lambda i: -self.lengths[i])
            return self._cut(order)
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        rng.shuffle(order)
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start:start + pool], key=lambda i: self.lengths[i])
            batches.extend(self._cut(chunk))
        rng.shuffle(batches)
        return batches

    def batches(self) -> List[List[int]]:
        """This rank's batches."""
        batches = self.global_batches()
        if self.nranks == 1:
            return batches
        if not self.shuffle:
            return batches[self.local_rank::self.nranks]
        shards = []
        for batch in batches:
            if len(batch) % self.nranks == 0:  # the last, short batch too when it splits evenly
                share = len(batch) // self.nranks
                shards.append(batch[self.local_rank * share:(self.local_rank + 1) * share])
        return shards

    def _cut(self, order: List[int]) -> List[List[int]]:
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[List[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        n = len(self.lengths)
        full, rest = divmod(n, self.batch_size)
        if self.nranks == 1:
            return full if self.drop_last or not rest else full + 1
        if self.shuffle:
            return full + (1 if rest and not self.drop_last and rest % self.nranks == 0 else 0)
        total = full if self.drop_last or not rest else full + 1
        return len(range(self.local_rank, total, self.nranks))


def make_loader(features: Sequence[Features], pad_token_id: int, batch_size: int, shuffle: bool,
                seed: int = 0, shard: bool = True) -> paddle.io.DataLoader:
    """A ``paddle.io.DataLoader`` over length-grouped batches (see :class:`LengthGroupedBatchSampler`).

    ``shard=False`` gives every batch to this process even when there are several.
    """
    dataset = FeatureDataset(features)
    replicas = {} if shard else {"num_replicas": 1, "rank": 0}
    sampler = LengthGroupedBatchSampler(dataset.lengths, batch_size, shuffle=shuffle, seed=seed, **replicas)
    return paddle.io.DataLoader(dataset, batch_sampler=sampler, collate_fn=Collator(pad_token_id),
                                num_workers=0, return_list=True)
