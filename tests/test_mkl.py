"""MKL's code path on AMD: MKL_DEBUG_CPU_TYPE set only where it helps, never over the user's own."""
import os

import pytest

from paddle_dynafast.mkl import MKL_CPU_TYPE, mkl_avx2_on_amd

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
    note = mkl_avx2_on_amd(cpuinfo)
    assert os.environ.get(MKL_CPU_TYPE) == expected
    assert (note is not None) == (expected is not None)
    assert mkl_avx2_on_amd(cpuinfo) is None  # once: set now, or nothing to do


def test_a_mkl_cpu_type_set_already_is_kept(tmp_path, monkeypatch):
    (tmp_path / "cpuinfo").write_text(AMD)
    monkeypatch.setenv(MKL_CPU_TYPE, "2")
    assert mkl_avx2_on_amd(tmp_path / "cpuinfo") is None and os.environ[MKL_CPU_TYPE] == "2"
