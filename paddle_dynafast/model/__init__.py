"""The model side: what a deployment needs and nothing more.

Loading the BERT classifier (and converting Hugging Face weights), its head-mask forward, the narrow fixed-width sub-model,
FastBERT branches, the batched exit loop, analytic FLOPs, the adaptive
:class:`~paddle_dynafast.model.dynafast.DynaFastModel` and a typed reader of a
stage directory. Imports no training module and no PaddleSlim (tested).
"""
