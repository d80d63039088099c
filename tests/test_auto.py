"""Opening a runtime by name or 'auto': a name goes to the registry, 'auto' to the runtime measured fastest here
(with that candidate's options), and options that belong to one runtime are refused with 'auto'."""
import re

import numpy as np
import pytest

from helpers import texts_of
from paddle_dynafast.errors import ConfigError
from paddle_dynafast.runtime import auto
from paddle_dynafast.runtime.choose import Candidate
from paddle_dynafast.runtime.paddle_inference import PaddleInferenceRuntime
from paddle_dynafast.runtime.predictor import Predictor


@pytest.fixture()
def opened(monkeypatch):
    """Every call of open_named, recorded instead of opening anything."""
    calls = []
    monkeypatch.setattr(auto, "open_named", lambda *args, **options: calls.append((args, options)) or "runtime")
    return calls


def test_a_name_is_opened_as_named(opened):
    assert auto.open_runtime("dir", "onnxruntime", threads=3, precision="int8", sign_key=b"k") == "runtime"
    assert opened == [(("dir", "onnxruntime", 3, "int8"), {"sign_key": b"k"})]
    auto.open_runtime("dir")
    assert opened[-1] == (("dir", PaddleInferenceRuntime.kind, 2, "fp32"), {})  # the default


def test_auto_opens_the_candidate_chosen_with_its_options(opened, monkeypatch):
    chosen = []

    def choose(directory, precision, threads):
        chosen.append((directory, precision, threads))
        return Candidate("paddle-inference", "bf16", (("onednn", True),)), []

    monkeypatch.setattr(auto, "choose", choose)
    verified = []  # with a sign key, the signature is checked before anything is measured
    monkeypatch.setattr(auto.ExportInfo, "read", lambda directory, key: verified.append((directory, key, chosen[:])))
    auto.open_runtime("dir", auto.AUTO, threads=1, precision="bf16", sign_key=b"k")
    assert verified == [("dir", b"k", [])] and chosen == [("dir", "bf16", 1)]
    assert opened == [(("dir", "paddle-inference", 1, "bf16"), {"sign_key": b"k", "onednn": True})]


def test_unknown_names_and_runtime_options_with_auto_are_refused(opened, monkeypatch):
    monkeypatch.setattr(auto, "choose", lambda *args: pytest.fail("measured although the options were refused"))
    with pytest.raises(ConfigError, match=re.escape("runtime 'tensorrt' is not one of ['dygraph', 'onnxruntime', "
                                                    "'paddle-inference', 'auto']")):
        auto.open_runtime("dir", "tensorrt")
    with pytest.raises(ConfigError, match=re.escape("options ['cache_capacity', 'onednn'] belong to one runtime: name "
                                                    "it (runtime=...), not auto")):
        auto.open_runtime("dir", "auto", onednn=False, cache_capacity=4, sign_key=b"k")
    assert opened == []


def test_auto_runs_the_chosen_runtime_with_the_same_answers(tiny_exports, toy_data, runtime_cache):
    directory, texts = tiny_exports[(0.5, True)], texts_of(toy_data, 16)
    runtime = auto.open_runtime(directory, "auto", threads=1)
    assert runtime.kind in {"paddle-inference", "onnxruntime"} and runtime_cache.is_file()
    got = Predictor(runtime).predict(texts, speed=0.3)
    expected = Predictor(directory, threads=1).predict(texts, speed=0.3)
    assert got.labels == expected.labels and got.exit_layer.tolist() == expected.exit_layer.tolist()
    np.testing.assert_allclose(got.probs, expected.probs, atol=1e-4)


def test_a_runtime_config_opens_the_runtime_it_names_with_its_options(tiny_exports, tmp_path):
    from paddle_dynafast.config import Precision, RuntimeConfig
    from paddle_dynafast.runtime.auto import open_configured, runtime_options

    assert runtime_options(RuntimeConfig(name="paddle-inference", onednn=False)) == {"precision": "fp32",
                                                                                    "onednn": False}
    assert runtime_options(RuntimeConfig(name="dygraph", trust_pickle=True)) == {"precision": "fp32",
                                                                                 "trust_pickle": True}
    assert runtime_options(RuntimeConfig(precision="int8")) == {"precision": Precision.INT8}  # auto: no runtime's own
    (tmp_path / "key").write_bytes(b"0123456789abcdef0123456789abcdef\n")
    assert runtime_options(RuntimeConfig(sign_key_file=str(tmp_path / "key")))["sign_key"] == \
        b"0123456789abcdef0123456789abcdef"
    runtime = open_configured(tiny_exports[(0.5, True)], RuntimeConfig(name="onnxruntime", threads=1, precision="int8"))
    assert (runtime.kind, runtime.precision, runtime.session.get_session_options().intra_op_num_threads) == \
        ("onnxruntime", "int8", 1)
    with pytest.raises(ConfigError, match="runtime paddle-inference runs fp32 or bf16, not int8"):
        open_configured(tiny_exports[(0.5, True)], RuntimeConfig(name="paddle-inference", precision="int8"))
