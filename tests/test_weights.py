"""Weight files: safetensors written, never a pickle loaded without trust_pickle (a planted payload does not run)."""
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from safetensors.numpy import load_file

from helpers import make_legacy, plant_payload
from paddle_dynafast.errors import UntrustedFileError
from paddle_dynafast.model import weights
from paddle_dynafast.model.convert import detect_format
from paddle_dynafast.model.loading import load_classifier
from paddle_dynafast.model.dynafast import DynaFastModel


def test_a_planted_pickle_does_not_run_without_trust(tmp_path):
    path = plant_payload(tmp_path / "model_state.pdparams", tmp_path / "ran")
    with pytest.raises(UntrustedFileError, match=r"model_state.pdparams is a pickle: loading it runs any code it "
                                                 r"carries.*Pass --trust-pickle \(trust_pickle=True\)"):
        weights.read_weights(path)
    assert not (tmp_path / "ran").exists()
    weights.load_pickle(path, trust_pickle=True)  # trusted, it is unpickled: the payload is real
    assert (tmp_path / "ran").read_text() == "the pickle ran"


@pytest.mark.parametrize("planted", ["model_state.pdparams", "branches.pdparams"])
def test_a_payload_in_a_model_directory_is_not_run(tmp_path, tiny_dynafast_dir, planted):
    directory = shutil.copytree(tiny_dynafast_dir, tmp_path / "old")
    (directory / {"model_state.pdparams": "model.safetensors", "branches.pdparams": "branches.safetensors"}[planted]
     ).unlink()
    plant_payload(directory / planted, tmp_path / "ran")
    with pytest.raises(UntrustedFileError, match=rf"old/{planted} is a pickle"):
        DynaFastModel.load(directory)
    assert not (tmp_path / "ran").exists()


def test_an_older_directory_loads_with_trust_pickle_and_equals_the_new(tmp_path, tiny_dynafast_dir):
    old = make_legacy(shutil.copytree(tiny_dynafast_dir, tmp_path / "old"))
    assert not list(old.glob("*.safetensors"))
    with pytest.raises(UntrustedFileError):
        load_classifier(old)
    legacy, current = DynaFastModel.load(old, trust_pickle=True), DynaFastModel.load(tiny_dynafast_dir)
    for (name, a), (_, b) in zip(legacy.backbone.state_dict().items(), current.backbone.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    for (name, a), (_, b) in zip(legacy.branches.state_dict().items(), current.branches.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_our_weights_are_safetensors_that_paddlenlp_reads(tmp_path, tiny_teacher_dir, tiny_hf_dir):
    from paddlenlp.transformers import BertForSequenceClassification

    assert sorted(p.name for p in tiny_teacher_dir.iterdir() if p.suffix in (".pdparams", ".pkl", ".pdopt")) == []
    ours = load_file(str(tiny_teacher_dir / "model.safetensors"))
    assert "bert.encoder.layers.0.self_attn.q_proj.weight" in ours
    assert detect_format(tiny_teacher_dir) == "paddlenlp" and detect_format(tiny_hf_dir) == "huggingface"
    reloaded = BertForSequenceClassification.from_pretrained(str(tiny_teacher_dir))
    for name, value in reloaded.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), ours[name], err_msg=name)


def test_a_write_that_cannot_finish_is_an_os_error_naming_the_file_and_leaves_the_old_one(tmp_path):
    """A full disk, as a file-size limit (RLIMIT_FSIZE) in a child process: the safetensors library's own writer
    would raise its SafetensorError; ours is an OSError naming the file, and the earlier file stays whole."""
    weights.save_weights(tmp_path / "w.safetensors", {"a": np.arange(3, dtype="float32")})
    code = textwrap.dedent(f"""
        import resource
        import numpy as np
        from paddle_dynafast.model.weights import save_weights
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            save_weights({str(tmp_path / 'w.safetensors')!r}, {{"a": np.zeros(10000, "float32")}})
        except OSError as error:
            print(type(error).__name__, error)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("OSError [Errno 27] File too large while writing"), done.stdout + done.stderr
    assert "w.safetensors" in done.stdout
    assert load_file(str(tmp_path / "w.safetensors"))["a"].tolist() == [0.0, 1.0, 2.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


@pytest.mark.parametrize("value, count", [(float("nan"), 1), (float("inf"), 2), (-float("inf"), 37)])
def test_weights_that_are_not_finite_are_refused_naming_the_tensor(tmp_path, value, count):
    from safetensors.numpy import save_file

    from paddle_dynafast.errors import CheckpointError

    arrays = {"bert.pooler.dense.bias": np.zeros(32, "float32"), "classifier.bias": np.zeros(37, "float32"),
              "position_ids": np.arange(4)}
    arrays["classifier.bias"][:count] = value
    save_file(arrays, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=rf"model.safetensors: tensor classifier.bias holds {count} of 37 values "
                                              r"that are not finite \(NaN or infinity\): the weights are damaged$"):
        weights.read_weights(tmp_path / "model.safetensors")
    arrays["classifier.bias"][:] = 0
    save_file(arrays, str(tmp_path / "model.safetensors"))
    assert sorted(weights.read_weights(tmp_path / "model.safetensors")) == sorted(arrays)
    (tmp_path / "link.safetensors").symlink_to(tmp_path / "model.safetensors")
    with pytest.raises(Exception, match=r"link.safetensors is a symbolic link"):
        weights.read_weights(tmp_path / "link.safetensors")
