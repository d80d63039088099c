"""MKL's code path on AMD: MKL_DEBUG_CPU_TYPE set only where it helps, never over the user's own."""
import logging
import os

import pytest

from paddle_dynafast.mkl import MKL_CPU_TYPE, mkl_avx2_on_amd, on_generic_path

AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx fma avx2\n\n" \
      "processor\t: 1\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx fma avx2\n"


@pytest.mark.parametrize("cpu, expected", [
    (AMD, "5"),
    (AMD.replace(" avx2", ""), None),  # the variable would force AVX2 code on a CPU without it
    (AMD.replace("AuthenticAMD", "GenuineIntel"), None),  # MKL takes the fast path on Intel by itself
    (None, None),  # no /proc/cpuinfo (not Linux): nothing known, nothing set
])
def test_mkl_takes_its_avx2_path_only_on_an_amd_cpu_with_avx2(tmp_path, monkeypatch, cpu, expected):
    monkeypatch.setenv(MKL_CPU_TYPE, "unset below")  # recorded, so that what the test sets is undone after it
    monkeypatch.delenv(MKL_CPU_TYPE)
    cpuinfo = tmp_path / "cpuinfo"
    if cpu is not None:
        cpuinfo.write_text(cpu)
    assert on_generic_path(cpuinfo) == (expected is not None)
    note = mkl_avx2_on_amd(cpuinfo)
    assert os.environ.get(MKL_CPU_TYPE) == expected
    assert (note is not None) == (expected is not None)
    assert mkl_avx2_on_amd(cpuinfo) is None  # once: set now, or nothing to do


def test_a_mkl_cpu_type_set_already_is_kept(tmp_path, monkeypatch):
    (tmp_path / "cpuinfo").write_text(AMD)
    monkeypatch.setenv(MKL_CPU_TYPE, "2")
    assert mkl_avx2_on_amd(tmp_path / "cpuinfo") is None and os.environ[MKL_CPU_TYPE] == "2"


def test_on_the_generic_path_a_plain_kernel_predictor_warns_once(tiny_exports, monkeypatch, caplog):
    """A Python program on an AMD CPU that did not set the variable before ``import paddle`` is told, once, when a
    Paddle Inference predictor runs the plain kernels (oneDNN does not use MKL's products)."""
    from paddle_dynafast import mkl
    from paddle_dynafast.runtime.paddle_inference import PaddleInferenceRuntime

    monkeypatch.setattr(mkl, "on_generic_path", lambda cpuinfo=None: True)
    mkl.warn_generic_path.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="paddle_dynafast.mkl"):
            PaddleInferenceRuntime(tiny_exports[(0.5, True)], threads=1, onednn=True)
            assert caplog.records == []
            for _ in range(2):
                PaddleInferenceRuntime(tiny_exports[(0.5, True)], threads=1, onednn=False)
        (record,) = caplog.records
        assert record.getMessage().startswith("MKL_DEBUG_CPU_TYPE is not set on this AMD CPU: Paddle's plain kernels")
    finally:
        mkl.warn_generic_path.cache_clear()
