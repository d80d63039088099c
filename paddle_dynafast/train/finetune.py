"""Stage 1: fine-tune a BERT classifier, the teacher of the later stages.

The model comes from a PaddleNLP or Hugging Face directory, keeps that
architecture with random weights (``random_init``), or, with no directory at
all, is a BERT of ``size`` on a character vocabulary built from the training
split (for Chinese, where no pretrained model is available offline). Cross-entropy
to the gold labels; the best dev checkpoint is the stage's model.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Dict, Optional

import paddle.nn.functional as F
from paddlenlp.transformers import BertConfig, BertTokenizer

from .. import data, distributed
from ..config import DataConfig, FinetuneConfig, ModelSize, PipelineConfig, TrainConfig, default
from ..model.loading import build_classifier, check_max_seq_len, load_classifier, save_classifier
from ..model.over_loader import accuracy, predict_logits
from .loop import LoopState
from .stage import Stage, StageResult, TrainSetup

logger = logging.getLogger(__name__)


class FinetuneStage(Stage):
    """Writes to ``output_dir``: the model and tokenizer (PaddleNLP ``save_pretrained``), ``stage.json`` and
    ``metrics.json`` (dev accuracy per epoch, test accuracy of the best model)."""

    name = "finetune"
    run_dir = "teacher"
    config_class = FinetuneConfig
    help = "stage 1: fine-tune a BERT classifier (the teacher)"
    description = ("Fine-tune BertForSequenceClassification from a pretrained directory (PaddleNLP or Hugging Face "
                   "format), or from random initialisation.")
    example = ("paddle-dynafast finetune --model MODEL_DIR --data-dir ../shared/data/sst2 --output runs/teacher "
               "--max-seq-len 64 --epochs 3")

    def prepare(self) -> Dict[str, Any]:
        config = self.config
        splits = data.load_splits(config.data)
        self.model, self.tokenizer, self.labels = _build_teacher(config, splits, self.trust_pickle)
        check_max_seq_len(self.model.config, config.data.max_seq_len, config.model_dir or "the random initialisation")
        self.features = {split: data.encode(examples, self.tokenizer, config.data.max_seq_len, self.labels)
                         for split, examples in splits.items()}
        self.model.config.id2label = dict(enumerate(self.labels))
        self.model.config.label2id = {label: i for i, label in enumerate(self.labels)}
        return {"labels": self.labels, "num_examples": {split: len(f) for split, f in self.features.items()},
                "dev_fingerprint": data.fingerprint(splits["dev"]),
                "truncated": {split: sum(x.truncated for x in f) for split, f in self.features.items()}}

    def build(self) -> TrainSetup:
        config, pad = self.config, self.tokenizer.pad_token_id
        train_loader = data.make_loader(self.features["train"], pad, config.train.batch_size, shuffle=True,
                                        seed=config.train.seed)
        self.dev_loader = data.make_loader(self.features["dev"], pad, config.train.eval_batch_size, shuffle=False)
        self.parallel = distributed.data_parallel(self.model)
        return TrainSetup(self.model, train_loader)

    def loss(self, batch):
        logits = self.parallel(batch["input_ids"], token_type_ids=batch["token_type_ids"])  # [batch, num_labels]
        return F.cross_entropy(logits, batch["labels"])

    def evaluate(self) -> Dict[str, Any]:
        acc = accuracy(predict_logits(self.model, self.dev_loader), [f.label for f in self.features["dev"]])
        return {"score": acc, "dev_accuracy": acc}

    def save_best(self, directory: Path) -> None:
        save_classifier(self.model, self.tokenizer, directory)

    def report(self, state: LoopState) -> Dict[str, Any]:
        best = load_classifier(self.output_dir, trust_pickle=self.trust_pickle)  # an earlier version's run resumed
        metrics: Dict[str, Any] = {"dev_accuracy": state.best_score, "num_labels": len(self.labels)}
        if "test" in self.features:
            test_loader = data.make_loader(self.features["test"], self.tokenizer.pad_token_id,
                                           self.config.train.eval_batch_size, shuffle=False, shard=False)
            metrics["test_accuracy"] = accuracy(predict_logits(best.model, test_loader),
                                                [f.label for f in self.features["test"]])
        logger.info("finetune: dev accuracy %.4f%s -> %s", state.best_score,
                    f", test accuracy {metrics['test_accuracy']:.4f}" if "test_accuracy" in metrics else "",
                    self.output_dir)
        return metrics

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", default=None,
                            help="pretrained model directory; omit with --random-init to build a character vocabulary")
        parser.add_argument("--random-init", action="store_true",
                            help="random weights (keeps --model's architecture and vocabulary if given)")
        add_size_arguments(parser)
        parser.add_argument("--min-char-count", type=int, default=default(FinetuneConfig, "min_char_count"),
                            help="character vocabulary: rarer characters are [UNK]")

    @classmethod
    def config_from_args(cls, args, data: DataConfig, train: TrainConfig) -> FinetuneConfig:
        return FinetuneConfig(output_dir=args.output, data=data, train=train, model_dir=args.model,
                              random_init=args.random_init, min_char_count=args.min_char_count,
                              size=size_from_args(args))

    @classmethod
    def config_from_pipeline(cls, pipeline: PipelineConfig, model_dir: Optional[str], output_dir: str):
        return FinetuneConfig(output_dir=output_dir, data=pipeline.data, train=pipeline.finetune, model_dir=model_dir,
                              random_init=pipeline.random_init, size=pipeline.size)

    @classmethod
    def summary(cls, result: StageResult) -> str:
        m = result.metrics
        return (f"dev accuracy {100 * m['dev_accuracy']:.2f}"
                + (f"  test accuracy {100 * m['test_accuracy']:.2f}" if "test_accuracy" in m else "")
                + f"  ({m['train_steps']} steps, {m['train_seconds']:.0f} s training) -> {result.output_dir}")


def add_size_arguments(parser: argparse.ArgumentParser) -> None:
    """The architecture flags of a random initialisation without ``--model`` (defaults: :class:`ModelSize`)."""
    for flag, name in (("--hidden-size", "hidden_size"), ("--num-layers", "num_layers"), ("--num-heads", "num_heads"),
                       ("--intermediate-size", "intermediate_size")):
        parser.add_argument(flag, type=int, default=default(ModelSize, name), help="random init without --model")


def size_from_args(args) -> ModelSize:
    return ModelSize(hidden_size=args.hidden_size, num_layers=args.num_layers, num_heads=args.num_heads,
                     intermediate_size=args.intermediate_size)


def _build_teacher(config: FinetuneConfig, splits, trust_pickle: bool = False):
    """Model, tokenizer and labels: pretrained, pretrained architecture with random weights, or a char vocab."""
    labels = data.training_labels(splits["train"], config.data.labels)
    if config.model_dir is not None:
        loaded = load_classifier(config.model_dir, num_labels=len(labels), random_init=config.random_init,
                                 trust_pickle=trust_pickle)
        return loaded.model, loaded.tokenizer, labels
    vocab = data.build_char_vocab((e.text_a + " " + (e.text_b or "") for e in splits["train"]), config.min_char_count)
    vocab_file = Path(config.output_dir) / "vocab.txt"  # the stage's own; save_pretrained copies it from here
    if distributed.is_main():
        vocab_file.parent.mkdir(parents=True, exist_ok=True)
        vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    distributed.barrier()
    tokenizer = BertTokenizer(vocab_file=str(vocab_file), do_lower_case=True)
    size = config.size
    bert_config = BertConfig(vocab_size=len(vocab), hidden_size=size.hidden_size, num_hidden_layers=size.num_layers,
                             num_attention_heads=size.num_heads, intermediate_size=size.intermediate_size,
                             max_position_embeddings=size.max_position_embeddings, type_vocab_size=2,
                             layer_norm_eps=1e-12, num_labels=len(labels))
    logger.info("character vocabulary of %d tokens from %d training examples", len(vocab), len(splits["train"]))
    return build_classifier(bert_config), tokenizer, labels


def finetune(config: FinetuneConfig, logdir: Optional[str] = None, restart: bool = False,
             trust_pickle: bool = False) -> StageResult:
    """Stage 1 (:class:`FinetuneStage`); an interrupted run resumes from its checkpoint, a complete one is left
    as it is. ``trust_pickle`` reads a pretrained ``model_state.pdparams`` (a pickle)."""
    return FinetuneStage(config, logdir, trust_pickle).run(restart)
