"""Analytic FLOPs: layers, branches, samples with their exits and models without, by hand on a small shape, and
against the weight shapes of a real narrow model."""
import numpy as np
import pytest

from paddle_dynafast.config import BranchConfig
from paddle_dynafast.model.flops import (BertShape, branch_flops, full_flops, head_flops, layer_flops, model_flops,
                                         sample_flops)
from paddle_dynafast.model.narrow import extract_submodel

SMALL = BertShape(hidden_size=4, num_layers=2, num_heads=2, head_dim=2, intermediate_size=6, num_labels=2)


def test_flops_by_hand():
    # tokens 3, full width: qkv 3*2*3*4*4=288, scores+context 2*2*3*3*4=144, out 2*3*4*4=96, ffn 2*2*3*4*6=288
    assert layer_flops(SMALL, 3) == 288 + 144 + 96 + 288
    # half width: 1 head (inner 2), 3 neurons: qkv 144, attention 72, out 48, ffn 144
    assert layer_flops(SMALL, 3, 0.5) == 144 + 72 + 48 + 144
    assert head_flops(SMALL) == 2 * 16 + 2 * 8
    assert model_flops(SMALL, 3) == 2 * 816 + 48 and model_flops(SMALL, 3, layers=1) == 816 + 48


@pytest.mark.parametrize("width", [1.0, 0.75, 0.5, 0.25])
def test_layer_flops_count_every_matrix_product_of_the_real_model(tiny_model, width):
    model = tiny_model if width == 1.0 else extract_submodel(tiny_model, tiny_model.config, width)
    layer, tokens = model.bert.encoder.layers[0], 7
    linears = [layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj, layer.self_attn.out_proj,
               layer.linear1, layer.linear2]
    dense = sum(2 * tokens * int(np.prod(linear.weight.shape)) for linear in linears)  # weight [in, out]
    inner = layer.self_attn.q_proj.weight.shape[1]
    attention = 2 * (2 * tokens * tokens * inner)  # Q K^T and P V over every kept head
    assert layer_flops(BertShape.from_config(tiny_model.config), tokens, width) == dense + attention


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"width 0 is not in \(0, 1\]"):
        SMALL.neurons_at(0)
    with pytest.raises(ValueError, match="width 0.3 keeps 0.6 of 2 heads"):
        SMALL.heads_at(0.3)
    with pytest.raises(ValueError, match=r"layers 3 is not in 1..2"):
        model_flops(SMALL, 3, layers=3)
    with pytest.raises(ValueError, match="tokens must be >= 1, got 0"):
        model_flops(SMALL, 0)


def test_branch_flops_by_hand():
    config = BranchConfig(cls_hidden_size=2, cls_num_attention_heads=1)
    # narrow 2*3*4*2=48, keys/values 2*2*3*2*2=48, query+out 2*2*2*2=16, attention 2*2*3*2=24, head 2*4+2*4=16
    assert branch_flops(4, 2, config, 3) == 48 + 48 + 16 + 24 + 16


def test_sample_flops_by_hand():
    shape = BertShape(hidden_size=4, num_layers=2, num_heads=2, head_dim=2, intermediate_size=6, num_labels=2)
    config = BranchConfig(cls_hidden_size=2, cls_num_attention_heads=1)
    # a layer of 3 tokens is 816 FLOPs (tests/test_flops.py), a branch 152 (tests/test_branches.py), the head 48
    assert layer_flops(shape, 3) == 816
    flops = sample_flops(shape, config, np.array([3, 3]), np.array([1, 2]), 1.0)
    assert flops.tolist() == [816 + 152, 2 * 816 + 152 + 48]


def test_full_flops_is_the_model_without_exits_per_sample():
    assert full_flops(SMALL, np.array([3, 1]), 0.5).tolist() == [model_flops(SMALL, 3, 0.5), model_flops(SMALL, 1, 0.5)]
