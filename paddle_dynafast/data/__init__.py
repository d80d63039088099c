"""Text-classification data: reading split files (:mod:`.readers`), the label set (:mod:`.labels`), tokenising
(:mod:`.encoding`) and batching (:mod:`.batching`). Every name is importable from here."""
from .batching import Collator, FeatureDataset, LengthGroupedBatchSampler, make_loader
from .encoding import SPECIAL_TOKENS, Features, build_char_vocab, encode
from .labels import MIN_LABEL_COUNT, label_ids, label_list, training_labels
from .readers import (SPLITS, Example, decode_lines, find_split, fingerprint, hold_out, iter_inputs, load_splits,
                      read_examples, read_inputs, read_json_lines, read_lines, read_texts)

__all__ = ["Collator", "Example", "FeatureDataset", "Features", "LengthGroupedBatchSampler", "MIN_LABEL_COUNT",
           "SPECIAL_TOKENS", "SPLITS", "build_char_vocab", "decode_lines", "encode", "find_split", "fingerprint",
           "hold_out", "iter_inputs", "label_ids", "label_list", "load_splits", "make_loader", "read_examples",
           "read_inputs", "read_json_lines", "read_lines", "read_texts", "training_labels"]
