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
        import paddle_dynafast
        from paddle_dynafast import artifacts, backbone, cli, compat, config, data, train
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
