"""Loading and saving the classifier: the PaddleNLP round trip, a classifier of another label count."""
import numpy as np
import paddle
import pytest
from helpers import random_ids

from paddle_dynafast.errors import CheckpointError
from paddle_dynafast.model import loading
from paddle_dynafast.model.loading import load_classifier


def _logits(model, ids, **kwargs):
    return model(paddle.to_tensor(ids), **kwargs).numpy()


def test_paddlenlp_round_trip(tmp_path, tiny_model):
    """save_pretrained -> our loader and PaddleNLP's own from_pretrained give the same logits."""
    from paddlenlp.transformers import BertForSequenceClassification

    tokenizer = loading.load_tokenizer(tmp_path / "tiny_hf")
    loading.save_classifier(tiny_model, tokenizer, tmp_path / "saved")
    ids = random_ids(np.random.default_rng(3), 5, 9, pad_from=[9, 4, 6, 2, 9])
    expected = _logits(tiny_model, ids)
    reloaded = load_classifier(tmp_path / "saved")
    assert reloaded.source_format == "paddlenlp" and reloaded.new_weights == []
    np.testing.assert_array_equal(_logits(reloaded.model, ids), expected)
    upstream = BertForSequenceClassification.from_pretrained(str(tmp_path / "saved"))
    upstream.eval()
    np.testing.assert_allclose(_logits(upstream, ids), expected, atol=1e-6)


def test_classifier_with_other_label_count_is_an_error(tmp_path, tiny_model):
    loading.save_classifier(tiny_model, loading.load_tokenizer(tmp_path / "tiny_hf"), tmp_path / "saved")
    with pytest.raises(CheckpointError, match="classifier for 3 labels, the data has 5"):
        load_classifier(tmp_path / "saved", num_labels=5)
