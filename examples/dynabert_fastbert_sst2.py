"""DynaBERT width + FastBERT depth on SST-2, step by step, as an ordinary Paddle training script.

The PaddleSlim DynaBERT tutorial's steps (teacher, importance and reordering,
``Convert``, ``DistillConfig``, ``OFA``, the width loop) and then FastBERT's
(branches after every layer, self-distillation), written with paddle_dynafast's
public API alone (``import paddle_dynafast as pdf``); the stage commands (``paddle-dynafast supernet`` / ``distill``)
do the same with checkpoints, resume and evaluation on top.

Run (after `make install`; a quick look takes a few minutes on 2 CPU cores):

    .venv/bin/python examples/dynabert_fastbert_sst2.py --data-dir ../shared/data/sst2 --output runs/example \\
        --max-examples 2000 --steps 60
"""
import argparse
import copy
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F

import paddle_dynafast as pdf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="pretrained directory (default: the offline MiniLM)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--max-examples", type=int, default=2000)
    parser.add_argument("--max-seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of each training phase")
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.75, 0.5, 0.25])
    args = parser.parse_args()
    paddle.seed(0)

    # 0. data: paddle.io batches of token ids
    splits = pdf.load_splits(pdf.DataConfig(args.data_dir, max_seq_len=args.max_seq_len,
                                            max_examples=args.max_examples))
    labels = pdf.label_list(splits["train"])
    loaded = pdf.load_classifier(args.model or pdf.minilm_dir(), num_labels=len(labels))
    model, tokenizer = loaded.model, loaded.tokenizer
    features = {s: pdf.encode(e, tokenizer, args.max_seq_len, labels) for s, e in splits.items()}
    train = pdf.make_loader(features["train"], tokenizer.pad_token_id, 32, shuffle=True)
    dev = pdf.make_loader(features["dev"], tokenizer.pad_token_id, 64, shuffle=False)
    gold = np.array([f.label for f in features["dev"]])

    def accuracy(forward):
        return pdf.accuracy(pdf.predict(forward, dev), gold)

    def steps():
        while True:
            for batch in train:
                yield batch

    # 1. the teacher: fine-tune the classifier
    optimizer = paddle.optimizer.AdamW(learning_rate=5e-5, parameters=model.parameters())
    model.train()
    for _, batch in zip(range(args.steps), steps()):
        F.cross_entropy(model(batch["input_ids"], token_type_ids=batch["token_type_ids"]), batch["labels"]).backward()
        optimizer.step()
        optimizer.clear_grad()
    model.eval()
    teacher = copy.deepcopy(model)
    print(f"teacher dev accuracy {accuracy(lambda b: teacher(b['input_ids'], token_type_ids=b['token_type_ids'])):.4f}")

    # 2. importance of heads (head-mask gradient) and FFN neurons, on held-out training data; reorder
    _, held_out = pdf.hold_out(splits["train"], 256, seed=0)
    scoring = pdf.make_loader(pdf.encode(held_out, tokenizer, args.max_seq_len, labels), tokenizer.pad_token_id, 32,
                              shuffle=False)
    pdf.reorder(model, pdf.compute_importance(model, scoring))

    # 3. supernet(expand_ratio) + Convert + set_state_dict, then DistillConfig + OFA, set_task("width")
    converted = pdf.convert_to_supernet(model, args.widths)
    ofa = pdf.make_ofa(converted, teacher=teacher, lambda_distill=0.1)

    # 4. the width loop: every batch, every width, hidden-state MSE + soft cross-entropy to the teacher
    optimizer = paddle.optimizer.AdamW(learning_rate=2e-5, parameters=converted.parameters())
    with pdf.head_mask_forward(converted):
        converted.train()
        for _, batch in zip(range(args.steps), steps()):
            for width in args.widths:
                ofa.set_net_config(pdf.width_config(ofa, width))
                logits, teacher_logits = ofa(batch["input_ids"], token_type_ids=batch["token_type_ids"])
                (ofa.calc_distill_loss() + pdf.soft_cross_entropy(logits, teacher_logits)).backward()
            optimizer.step()
            optimizer.clear_grad()
        converted.eval()
        for width in args.widths:
            ofa.set_net_config(pdf.width_config(ofa, width))
            print(f"supernet width {width}: dev accuracy {accuracy(lambda b: pdf.supernet_logits(ofa, b)):.4f}")

    # 5. FastBERT branches after every layer, self-distilled from each width's own final classifier (the distill
    # stage's default adds the labels: half this KL, half the cross-entropy, --objective mix)
    full = pdf.build_classifier(model.config)
    pdf.assign_weights(full, pdf.plain_state(converted))
    branches = pdf.Branches(len(full.bert.encoder.layers), full.config.hidden_size, len(labels), pdf.BranchConfig(),
                            widths=args.widths)
    dynafast = pdf.DynaFastModel(full, tokenizer, branches, labels)
    optimizer = paddle.optimizer.AdamW(learning_rate=5e-4, parameters=branches.parameters())
    branches.train()
    for _, batch in zip(range(args.steps), steps()):
        for width in args.widths:
            adaptive = dynafast.at(width)
            with paddle.no_grad():  # backbone and final classifier frozen
                states, mask = adaptive.hidden_states(batch["input_ids"], batch["token_type_ids"])
                final = adaptive.classify(adaptive.num_layers - 1, states[-1], mask)
            sum(pdf.kl_divergence(branch(states[i], mask), final)
                for i, branch in enumerate(branches.at(width))).backward()
        optimizer.step()
        optimizer.clear_grad()
    branches.eval()

    # 6. adaptive inference: each sample leaves at the first layer sure enough
    for width in args.widths:
        for speed in (0.0, 0.3, 0.6):
            def forward(b):
                return dynafast.at(width)(b["input_ids"], b["token_type_ids"], speed=speed)[0]
            print(f"width {width} speed {speed}: dev accuracy {accuracy(forward):.4f}")
    pdf.save_classifier(full, tokenizer, args.output)
    dynafast.save_branches(Path(args.output))
    print(f"-> {args.output} (paddle-dynafast evaluate/export read it)")


if __name__ == "__main__":
    main()
