"""Loading and saving the classifier: the PaddleNLP round trip, a classifier of another label count."""
import re

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


def test_the_parameter_count_of_a_config_is_the_models(tiny_model):
    """What a config.json is checked against, before anything is allocated: the model's own count."""
    held = sum(int(np.prod(p.shape)) for name, p in tiny_model.named_parameters() if not name.startswith("classifier"))
    assert loading.parameter_count(tiny_model.config) == held


@pytest.mark.parametrize("raw, message", [
    ([], "holds a JSON list, not an object of settings"),
    ({"hidden_size": True}, "hidden_size must be a whole number in [1, 2147483647], got True"),
    ({"num_hidden_layers": 0}, "num_hidden_layers must be a whole number in [1, 2147483647], got 0"),
    ({"intermediate_size": 37.0}, "intermediate_size must be a whole number in [1, 2147483647], got 37.0"),
    ({"type_vocab_size": 2 ** 31}, "type_vocab_size must be a whole number in [1, 2147483647], got 2147483648"),
    ({"num_labels": "2"}, "num_labels must be a whole number in [1, 2147483647], got '2'"),
    ({"hidden_size": 32, "num_attention_heads": 5}, "hidden_size 32 is not a multiple of num_attention_heads 5"),
    ({"hidden_dropout_prob": "0.1"}, "hidden_dropout_prob must be a finite number, got '0.1'"),
    ({"initializer_range": float("inf")}, "initializer_range must be a finite number, got inf"),
    ({"id2label": ["a", "b"]}, "id2label must be a JSON object, got ['a', 'b']"),
])
def test_a_config_json_of_the_wrong_types_or_sizes_is_named(tmp_path, raw, message):
    with pytest.raises(CheckpointError, match=re.escape(f"{tmp_path / 'config.json'}") + ".*" + re.escape(message)):
        loading.check_config_json(raw, tmp_path / "config.json")


def test_a_vocabulary_is_text_with_the_special_tokens(tmp_path):
    from paddle_dynafast.errors import ArtifactError

    vocab = tmp_path / "vocab.txt"
    vocab.write_bytes(b"[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nw\xc3\xb6rd\r\n")  # a Windows file: as PaddleNLP reads it
    assert loading.read_vocabulary(vocab) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "wörd"]
    for content, message in ((b"\n\n", "vocab.txt is empty"), (b"[PAD]\n[CLS]\nw\n", "vocab.txt has no [UNK] or "
                                                                                   "[SEP]: not a BERT vocabulary"),
                             (b"\xff\xfe[\x00P\x00", "vocab.txt is not UTF-8 text (byte 0: b'\\xff')")):
        vocab.write_bytes(content)
        with pytest.raises(ArtifactError, match=re.escape(message)):
            loading.load_tokenizer(tmp_path)
