"""Word substitution from embedding neighbours: the neighbours against brute force, only whole words replaced."""
import numpy as np
import pytest

from helpers import SPECIALS
from paddle_dynafast.config import AugmentConfig
from paddle_dynafast.data.encoding import Features
from paddle_dynafast.train import augment

TOKENS = SPECIALS + ["good", "bad", "##ly", "run", ",", "[unused0]", "fine", "awful", "##s", "walk", "7"]
#                      5       6      7       8      9      10          11      12       13     14      15


def test_replaceable_wordpieces():
    allowed = augment.replaceable(TOKENS, special_ids=range(5))
    assert np.flatnonzero(allowed).tolist() == [5, 6, 8, 11, 12, 14, 15]  # no specials, ##, [unused0], punctuation


def test_nearest_neighbours_against_brute_force():
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((40, 8)) * rng.random((40, 1)) * 5  # norms vary: cosine, not dot product
    candidates = np.arange(3, 40, 2)
    queries = np.array([3, 4, 9, 21, 39])
    got = augment.nearest_neighbours(embeddings, queries, candidates, k=4, chunk=2)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    for row, q in zip(got, queries):
        sims = {int(c): float(unit[q] @ unit[c]) for c in candidates if c != q}
        assert row.tolist() == sorted(sims, key=lambda c: -sims[c])[:4]
    with pytest.raises(ValueError, match="3 candidate wordpieces are too few for 4 neighbours"):
        augment.nearest_neighbours(embeddings, queries, candidates[:3], k=4)


def test_copies_replace_whole_words_only_with_neighbours_and_carry_no_label():
    rng = np.random.default_rng(1)
    embeddings = rng.standard_normal((len(TOKENS), 6))
    feature = Features(input_ids=[2, 5, 7, 8, 9, 11, 13, 14, 15, 3], token_type_ids=[0] * 10, label=1, truncated=False)
    # whole single-piece words: 8 (run), 14 (walk), 15 (7); 5 and 11 are continued by ##ly / ##s, 9 is punctuation
    allowed = augment.replaceable(TOKENS, range(5))
    continuation = np.array([t.startswith("##") for t in TOKENS])
    assert augment.word_positions(feature.input_ids, allowed, continuation).tolist() == [3, 7, 8]
    config = AugmentConfig(copies=5, probability=1.0, neighbours=2)
    augmenter = augment.Augmenter(embeddings, TOKENS, range(5), config)
    copies = augmenter([feature], seed=0)
    assert len(copies) == 5 and all(c.label == -1 and c.token_type_ids == feature.token_type_ids for c in copies)
    for copy in copies:
        changed = [i for i, (a, b) in enumerate(zip(feature.input_ids, copy.input_ids)) if a != b]
        assert changed == [3, 7, 8]  # probability 1: every whole word, nothing else
        for i in changed:
            assert copy.input_ids[i] in augmenter.neighbours[feature.input_ids[i]].tolist()
            assert allowed[copy.input_ids[i]]
    assert augmenter([feature], seed=0) == copies  # seeded
    assert augmenter([feature], seed=1) != copies
    some = augment.Augmenter(embeddings, TOKENS, range(5), AugmentConfig(copies=400, probability=0.4, neighbours=2))
    share = np.mean([a != b for c in some([feature], seed=0) for a, b in zip(c.input_ids, feature.input_ids)])
    assert share == pytest.approx(0.4 * 3 / 10, abs=0.02)
    assert augment.augment_features([feature], None, None, AugmentConfig(), seed=0) == []  # copies 0: off
    with pytest.raises(ValueError, match="augment probability 0 is not in"):
        AugmentConfig(probability=0)
