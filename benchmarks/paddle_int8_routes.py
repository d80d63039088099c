"""Every way to get a Paddle Inference int8 program of a classifier tried on this Paddle, each in its own process;
prints which works and, for the others, the frame and the error where it breaks (issue 23, item 3).

    .venv/bin/python benchmarks/paddle_int8_routes.py --model runs/sst2/teacher

``--model`` is a finetune (or distill) directory; the plain classifier at full width is what every route quantizes,
since none gets that far, the exit loop is not tried. Calibration batches are random token ids: the routes break
before accuracy could matter. A route that works is reported with its largest probability difference from the fp32
export on the same batch (the program runs on Paddle Inference with oneDNN and ``enable_mkldnn_int8``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROUTES = {
    "static-ptq": "paddle.static.quantization.PostTrainingQuantization on the exported program",
    "slim-ptq": "paddleslim.quant.quant_post_static on the exported program",
    "legacy-program": "a ProgramDesc (.pdmodel) for the legacy passes: to_static with FLAGS_enable_pir_api=0",
    "dygraph-ptq": "paddle.quantization.PTQ in dygraph, saved with a dynamic batch and length",
    "dygraph-ptq-fixed": "paddle.quantization.PTQ in dygraph, saved with batch 8 and length 16, "
                         "then Paddle Inference oneDNN int8",
    "onnxruntime-backend": "Paddle Inference's own ONNX Runtime backend (Config.enable_onnxruntime)",
}

CHILD = r'''
import json, re, sys, traceback
import numpy as np
import paddle
from paddle import inference
from paddle.static import InputSpec

route, model_dir, export_dir, work = sys.argv[1:5]
BATCH, LENGTH = 8, 16
rng = np.random.default_rng(0)
ids = rng.integers(1, 99, size=(BATCH, LENGTH)).astype("int64")  # ids every vocabulary has (the tests' has 99)

def batches():
    for _ in range(2):
        yield {"input_ids": ids, "token_type_ids": np.zeros_like(ids)}

def classifier():
    from paddle_dynafast.model.forward import Probabilities
    from paddle_dynafast.model.loading import load_classifier
    layer = Probabilities(load_classifier(model_dir).model)
    layer.eval()
    return layer

def save(layer, shape):
    spec = [InputSpec(shape, "int64", "input_ids"), InputSpec(shape, "int64", "token_type_ids")]
    paddle.jit.save(paddle.jit.to_static(layer, input_spec=spec, full_graph=True), f"{work}/model")

def ptq(layer):
    from paddle.quantization import PTQ, QuantConfig
    from paddle.quantization.observers import AbsmaxObserver
    config = QuantConfig(activation=None, weight=None)
    config.add_type_config(paddle.nn.Linear, activation=AbsmaxObserver(quant_bits=8), weight=AbsmaxObserver(quant_bits=8))
    quant = PTQ(config)
    observed = quant.quantize(layer, inplace=False)
    for feed in batches():
        observed(paddle.to_tensor(feed["input_ids"]), paddle.to_tensor(feed["token_type_ids"]))
    return quant.convert(observed, inplace=False)

def run(directory, int8):
    config = inference.Config(f"{directory}/model.json", f"{directory}/model.pdiparams")
    config.disable_gpu(); config.disable_glog_info(); config.enable_mkldnn()
    if int8:
        config.enable_mkldnn_int8()
    predictor = inference.create_predictor(config)
    for name, value in next(batches()).items():
        predictor.get_input_handle(name).copy_from_cpu(value)
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

def frames(error):
    """The innermost frame in Paddle's or PaddleSlim's quantization code and the innermost of all, as
    site-packages/...:line: from the traceback, and from the message of an error that dy2static raised again (its
    own frames are in the text)."""
    found = [(f.filename, f.lineno) for f in traceback.extract_tb(error.__traceback__)]
    found += [(name, int(line)) for name, line in re.findall(r'File "([^"]+)", line (\d+)', str(error))]
    found = [f"{name.split('site-packages/')[-1]}:{line}" for name, line in found
             if "site-packages" in name and "dy2static/error.py" not in name]
    return ", ".join(dict.fromkeys([f for f in found if "quant" in f][-1:] + found[-1:]))

def message(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line and not line.startswith("[")]
    return f"{type(error).__name__}: {(errors or lines or [''])[-1]}"

stage = "quantize"
try:
    if route in ("static-ptq", "slim-ptq"):
        paddle.enable_static()
        executor = paddle.static.Executor(paddle.CPUPlace())
        ops = ["matmul_v2", "matmul", "mul"]
        if route == "static-ptq":
            from paddle.static.quantization import PostTrainingQuantization
            PostTrainingQuantization(executor=executor, model_dir=export_dir, model_filename="model.json",
                                     params_filename="model.pdiparams", data_loader=batches, batch_nums=2,
                                     algo="abs_max", quantizable_op_type=ops).quantize()
        else:
            from paddleslim.quant import quant_post_static
            quant_post_static(executor=executor, model_dir=export_dir, quantize_model_path=work, data_loader=batches,
                              model_filename="model.json", params_filename="model.pdiparams", batch_nums=2,
                              algo="abs_max", quantizable_op_type=ops, onnx_format=False)
        result = {"works": True}
    elif route == "legacy-program":
        stage = "save"
        save(classifier(), [None, None])
        result = {"works": True}
    elif route in ("dygraph-ptq", "dygraph-ptq-fixed"):
        quantized = ptq(classifier())
        stage = "save"
        save(quantized, [None, None] if route == "dygraph-ptq" else [BATCH, LENGTH])
        stage = "Paddle Inference"
        difference = float(np.abs(run(work, int8=True) - run(export_dir, int8=False)).max())
        result = {"works": True, "max_probability_difference": difference}
    elif route == "onnxruntime-backend":
        config = inference.Config(f"{export_dir}/model.json", f"{export_dir}/model.pdiparams")
        config.enable_onnxruntime()
        result = {"works": bool(config.onnxruntime_enabled()),
                  "error": "" if config.onnxruntime_enabled() else "Config.onnxruntime_enabled() is False after "
                  "enable_onnxruntime(): this Paddle was not compiled with ONNX Runtime"}
except Exception as error:
    result = {"works": False, "stage": stage, "frame": frames(error), "error": message(error)}
print("RESULT " + json.dumps(result))
'''


def try_route(route: str, model_dir: str, export_dir: str) -> dict:
    env = dict(os.environ)
    if route == "legacy-program":
        env["FLAGS_enable_pir_api"] = "0"  # read when Paddle loads
    with tempfile.TemporaryDirectory() as work:
        done = subprocess.run([sys.executable, "-c", CHILD, route, model_dir, export_dir, work], env=env,
                              capture_output=True, text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"works": False, "frame": "", "error": f"the process ended ({done.returncode}): {tail}"}
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a finetune or distill directory")
    parser.add_argument("--route", action="append", choices=sorted(ROUTES), help="only these (repeatable)")
    parser.add_argument("--output", help="also write the results as JSON here")
    args = parser.parse_args(argv)

    import paddle
    from paddle_dynafast.config import ExportConfig
    from paddle_dynafast.runtime.export import export_model

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        export_dir = str(Path(tmp) / "export")
        export_model(ExportConfig(model_dir=args.model, output_dir=export_dir, no_exit=True, onnx=False))
        for route in args.route or list(ROUTES):
            results[route] = try_route(route, args.model, export_dir)
            print(f"{route}: {results[route]}", file=sys.stderr, flush=True)
    print(f"Paddle {paddle.__version__}: routes to a Paddle Inference int8 program of {args.model}\n")
    print("| route | what | works | where it breaks |")
    print("| --- | --- | --- | --- |")
    for route, result in results.items():
        where = " ".join(x for x in (f"at {result['stage']}:" if result.get("stage") else "",
                                     f"`{result['frame']}`" if result.get("frame") else "", result.get("error", "")) if x)
        if result["works"] and "max_probability_difference" in result:
            where = f"runs; largest probability difference from fp32 {result['max_probability_difference']:.4f}"
        print(f"| {route} | {ROUTES[route]} | {'yes' if result['works'] else 'no'} | {where} |")
    if args.output:
        Path(args.output).write_text(json.dumps({"paddle": paddle.__version__, "routes": results}, indent=2))


if __name__ == "__main__":
    main()
