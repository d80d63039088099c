"""The promise an export carries: written and read back as it was, and said in one line."""
from paddle_dynafast.runtime.promise import Promise, SplitDrop


def _promise(**changes) -> Promise:
    fields = dict(width=0.5, speed=0.3, measured_on="onnxruntime int8", reference="teacher", max_accuracy_drop=0.5,
                  confidence=0.9, within_budget=True, dev=SplitDrop(0.88, 0.885, 0.5, -0.2, 1.2), promised_drop=0.45,
                  test=SplitDrop(0.89, 0.888, -0.2, -0.9, 0.5), flops_speedup=3.1, throughput_speedup=4.2,
                  latency_speedup=3.5, reference_runtime="paddle-inference fp32 onednn=True", reference_dir="t",
                  calibration="c/timed.json", program_files={"model.int8.onnx": "ab" * 32})
    return Promise(**{**fields, **changes})


def test_a_promise_reads_back_as_it_was_written():
    promise = _promise()
    assert Promise.from_json(promise.to_json()) == promise
    flops = _promise(test=None, throughput_speedup=None, latency_speedup=None, reference_runtime=None,
                     measured_on="dygraph fp32", program_files={})
    assert Promise.from_json(flops.to_json()) == flops


def test_its_line_says_the_point_the_budget_and_what_was_measured():
    assert _promise().summary() == ("width 0.5, speed 0.3 on onnxruntime int8: at most 0.5 points below the teacher "
                                    "(confidence 0.9, promised drop 0.45)")
    assert _promise(confidence=None, promised_drop=None, within_budget=False).summary().endswith(
        "(raw dev drop) (NOT within the budget)")
