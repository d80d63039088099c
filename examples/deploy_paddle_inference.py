"""Serve an exported paddle_dynafast model with Paddle Inference alone (this script never imports paddle_dynafast).

The export directory holds the program (exit loop inside, `speed` an input),
its weights, the tokenizer files and export.json (labels, max_seq_len). This is
all a deployment needs: paddle.inference, a BERT tokenizer and NumPy. Sentence
pairs are tokenised as [CLS] a [SEP] b [SEP] with token_type_ids 1 on b, cut
longest first, as the model was trained.

Run (after `paddle-dynafast export --model runs/sst2/dynafast --width 0.5 --output runs/export-w0.5`):

    .venv/bin/python examples/deploy_paddle_inference.py --model runs/export-w0.5 --speed 0.3 \\
        "a gorgeous , witty , seductive movie ." "the plot is nothing but boilerplate clichés"

and for a model trained on sentence pairs (a .tsv with text_b), one --pair per pair:

    .venv/bin/python examples/deploy_paddle_inference.py --model runs/export-pairs --speed 0.3 \\
        --pair "a man is playing a guitar ." "a person plays an instrument ."
"""
import argparse
import json
from pathlib import Path

import numpy as np
from paddle import inference
from paddlenlp.transformers import BertTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an export directory")
    parser.add_argument("--speed", type=float, default=0.3, help="exit threshold in [0, 1]")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("TEXT_A", "TEXT_B"),
                        help="a sentence pair (repeat for more)")
    parser.add_argument("texts", nargs="*", help="single texts")
    args = parser.parse_args()
    inputs = [(text, None) for text in args.texts] + [tuple(pair) for pair in args.pair]
    if not inputs:
        parser.error("give texts, or --pair TEXT_A TEXT_B")

    directory = Path(args.model)
    info = json.loads((directory / "export.json").read_text())
    config = inference.Config(str(directory / "model.json"), str(directory / "model.pdiparams"))
    config.disable_gpu()
    config.set_cpu_math_library_num_threads(args.threads)
    config.enable_mkldnn()
    config.disable_glog_info()
    predictor = inference.create_predictor(config)
    tokenizer = BertTokenizer(vocab_file=str(directory / "vocab.txt"),
                              do_lower_case=json.loads((directory / "tokenizer_config.json").read_text())
                              .get("do_lower_case", True))

    # one batch, padded to its longest input; token_type_ids are 0 on [CLS] a [SEP] and 1 on b [SEP]
    encoded = [tokenizer(a, text_pair=b, max_length=info["max_seq_len"], truncation=True) for a, b in inputs]
    width = max(len(e["input_ids"]) for e in encoded)
    input_ids = np.full((len(encoded), width), tokenizer.pad_token_id, dtype="int64")  # [batch, seq]
    token_type_ids = np.zeros((len(encoded), width), dtype="int64")  # [batch, seq]
    for row, e in enumerate(encoded):
        input_ids[row, :len(e["input_ids"])] = e["input_ids"]
        token_type_ids[row, :len(e["token_type_ids"])] = e["token_type_ids"]
    feeds = {"input_ids": input_ids, "token_type_ids": token_type_ids}
    if info["exit_loop"]:
        feeds["speed"] = np.array([args.speed], dtype="float32")
    for name, value in feeds.items():
        predictor.get_input_handle(name).copy_from_cpu(value)
    predictor.run()
    outputs = {n: predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()}
    names = info["outputs"]  # our output names -> the program's
    probs = outputs[names["probs"]]  # [batch, num_labels]
    exit_layer = outputs[names["exit_layer"]] if info["exit_loop"] else np.full(len(encoded), info["num_layers"])
    for (a, b), p, layer in zip(inputs, probs, exit_layer):
        print(json.dumps({"text": a, **({"text_b": b} if b is not None else {}),
                          "label": info["labels"][int(p.argmax())], "probs": [round(float(x), 4) for x in p],
                          "exit_layer": int(layer)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
