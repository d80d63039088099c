"""Fine-tune the offline all-MiniLM-L6-v2 on SST-2 with paddle_dynafast's public API (stage 1).

Run (from the repository root, after `make install`):

    .venv/bin/python examples/finetune_minilm.py --data-dir ../shared/data/sst2 --output runs/teacher

Add `--max-steps 50` for a quick look. The output directory is a PaddleNLP
model directory: `BertForSequenceClassification.from_pretrained("runs/teacher")`
loads it, and it is the `--model` of the later stages.
"""
import argparse

import paddle_dynafast as pdf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="pretrained directory (default: the offline MiniLM)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args()

    config = pdf.FinetuneConfig(
        output_dir=args.output,
        model_dir=args.model or str(pdf.minilm_dir()),
        data=pdf.DataConfig(data_dir=args.data_dir, max_seq_len=64),
        train=pdf.TrainConfig(epochs=args.epochs, batch_size=32, lr=5e-5, max_steps=args.max_steps),
    )
    result = pdf.finetune(config)
    print(f"dev accuracy {result.metrics['dev_accuracy']:.4f}, test accuracy {result.metrics.get('test_accuracy')}")


if __name__ == "__main__":
    main()
