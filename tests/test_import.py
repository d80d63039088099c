"""Importing paddle_dynafast changes nothing: no heavy imports, no patching, no logging, no files."""
import subprocess
import sys
import textwrap


def _run(code: str, cwd) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            cwd=cwd, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_has_no_side_effects(tmp_path):
    out = _run("""
        import logging, os, sys
        handlers = list(logging.getLogger().handlers)
        import paddle_dynafast
        heavy = [m for m in ("paddle", "paddlenlp", "paddleslim") if m in sys.modules]
        print(heavy, logging.getLogger().handlers == handlers, os.listdir("."))
    """, tmp_path)
    assert out == "[] True []"


def test_importing_every_module_patches_nothing(tmp_path):
    out = _run("""
        import paddle, paddlenlp.transformers as t
        from paddleslim.nas.ofa import layers as ofa
        classes = [paddle.nn.MultiHeadAttention, paddle.nn.TransformerEncoderLayer, paddle.nn.TransformerEncoder,
                   t.BertModel, t.BertForSequenceClassification, ofa.SuperLayerNorm, ofa.SuperEmbedding]
        before = [dict(vars(c)) for c in classes]
        import importlib, pkgutil
        import paddle_dynafast
        for module in pkgutil.walk_packages(paddle_dynafast.__path__, "paddle_dynafast."):
            if module.name != "paddle_dynafast.__main__":  # that one runs the command line
                importlib.import_module(module.name)
        print(all(dict(vars(c)) == b for c, b in zip(classes, before)))
    """, tmp_path)
    assert out.endswith("True")


def test_public_names_stay_functions_after_their_modules_load(tmp_path):
    # a public name equal to its module's name is shadowed by the submodule once anything imports it
    out = _run("""
        import importlib, inspect
        import paddle_dynafast as pdf
        for module in set(pdf._PUBLIC.values()):
            importlib.import_module(f"paddle_dynafast.{module}")
        print([name for name in pdf.__all__ if inspect.ismodule(getattr(pdf, name))])
    """, tmp_path)
    assert out.endswith("[]")


def test_the_model_and_runtime_sides_need_no_training_code_and_no_paddleslim(tmp_path, tiny_exports,
                                                                             tiny_dynafast_dir):
    """A deployment loads the model side and the runtime side only. PaddleSlim is made unimportable, as in an
    environment without it (PaddleNLP 2.8.1 itself imports PaddleSlim when it is installed: its quantization
    module tries it); both sides import, load and run a model, and no training module is loaded."""
    out = _run(f"""
        import importlib, pkgutil, sys
        sys.modules["paddleslim"] = None  # import paddleslim now raises ImportError
        import paddle_dynafast.model, paddle_dynafast.runtime
        for package in (paddle_dynafast.model, paddle_dynafast.runtime):
            for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
                importlib.import_module(module.name)
        from paddle_dynafast.model.dynafast import DynaFastModel
        from paddle_dynafast.runtime.predictor import Predictor
        DynaFastModel.load({str(tiny_dynafast_dir)!r}).at(0.5)
        print(Predictor({str(tiny_exports[(0.5, True)])!r}, threads=1).predict(["good w1"], speed=0.3).labels)
        loaded = sorted(m for m in sys.modules if sys.modules[m] is not None
                        and (m.startswith(("paddle_dynafast.train", "paddleslim")) or m == "paddle_dynafast.pipeline"))
        print(loaded)
    """, tmp_path)
    from paddle_dynafast.runtime.predictor import Predictor

    expected = Predictor(tiny_exports[(0.5, True)], threads=1).predict(["good w1"], speed=0.3).labels
    assert out.splitlines()[-2:] == [str(expected), "[]"]
