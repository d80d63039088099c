"""Text-classification data: reading split files (:mod:`.readers`), the label set (:mod:`.labels`), tokenising
(:mod:`.encoding`) and batching (:mod:`.batching`). Every name is importable from here."""
from .batching import Collator, FeatureDataset, LengthGroupedBatchSampler, make_loader
from .encoding import SPECIAL_TOKENS, Features, build_char_vocab, encode
from .labels import MIN_LABEL_COUNT, label_ids, label_list, training_labels
from .readers import (CALIBRATION, HOLDOUT, SPLITS, Example, calibration_examples, decode_lines, find_split, fingerprint,
                      hold_out, iter_inputs, load_splits, read_examples, read_inputs, read_json_lines, read_lines,
                      read_texts)

__all__ = ["build_char_vocab", "CALIBRATION", "calibration_examples", "Collator", "decode_lines", "encode",
           "Example", "FeatureDataset", "Features", "find_split", "fingerprint", "hold_out", "HOLDOUT",
           "iter_inputs", "label_ids", "label_list", "LengthGroupedBatchSampler", "load_splits",
           "make_loader", "MIN_LABEL_COUNT", "read_examples", "read_inputs", "read_json_lines",
           "read_lines", "read_texts", "SPECIAL_TOKENS", "SPLITS", "training_labels"]
