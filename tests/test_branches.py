"""FastBERT branches: the one-query attention equals full self-attention at [CLS]; shared and per-width sets;
FLOPs by hand."""
import numpy as np
import paddle
import pytest

from paddle_dynafast.config import BranchConfig
from paddle_dynafast.model.backbone import MASK_VALUE
from paddle_dynafast.model.branches import Branches, FastBERTClassifier, branch_flops

CONFIG = BranchConfig(cls_hidden_size=8, cls_num_attention_heads=2, dropout=0.0)


def test_one_query_equals_the_paper_s_full_self_attention_at_cls():
    paddle.seed(0)
    branch = FastBERTClassifier(12, 3, CONFIG)
    branch.eval()
    hidden = paddle.randn([2, 5, 12])  # [batch, seq, hidden]
    pad = paddle.to_tensor([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]], dtype="float32")
    mask = paddle.unsqueeze(pad * MASK_VALUE, axis=[1, 2])  # [batch, 1, 1, seq]
    narrow = paddle.tanh(branch.narrow(hidden))
    full = branch.attention(narrow, narrow, narrow, attn_mask=mask)  # every position, as the paper computes it
    expected = branch.logits(paddle.tanh(branch.prelogits(full[:, 0])))
    np.testing.assert_allclose(branch(hidden, mask).numpy(), expected.numpy(), atol=1e-5)


def test_shared_and_per_width_sets():
    shared = Branches(3, 12, 2, CONFIG, widths=(1.0, 0.5))
    assert len(shared.sets) == 1 and shared.at(1.0) is shared.at(0.5) and len(shared.at(0.5)) == 2
    per_width = Branches(3, 12, 2, CONFIG, widths=(1.0, 0.5), shared=False)
    assert per_width.at(1.0) is not per_width.at(0.5)
    with pytest.raises(KeyError, match=r"no branches for width 0.25; this model has widths \[1.0, 0.5\]"):
        per_width.at(0.25)
    again = Branches.from_description(per_width.describe())
    assert again.describe() == per_width.describe() and set(again.state_dict()) == set(per_width.state_dict())
    with pytest.raises(ValueError, match="a model of 1 layer"):
        Branches(1, 12, 2, CONFIG)


def test_branch_flops_by_hand():
    config = BranchConfig(cls_hidden_size=2, cls_num_attention_heads=1)
    # narrow 2*3*4*2=48, keys/values 2*2*3*2*2=48, query+out 2*2*2*2=16, attention 2*2*3*2=24, head 2*4+2*4=16
    assert branch_flops(4, 2, config, 3) == 48 + 48 + 16 + 24 + 16
