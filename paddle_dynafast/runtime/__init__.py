"""The runtime side: one interface, ``run_batch(input_ids, token_type_ids, speed) -> probs, exit_layer``, with
Paddle Inference, ONNX Runtime and dygraph behind it (:mod:`.base`; :mod:`.registry` opens one by name,
:mod:`.auto` also the fastest here); export writes what the runtimes read, and predict, bench and serve use only
the interface. Imports no training module and no PaddleSlim.
"""
