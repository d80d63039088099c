"""Paddle's CPU thread count set for a block: inside it the kernels get the count, after it (also after an error)
the counts before it are back, in MKL and in the calling thread's OpenMP alike."""
import os
import threading

import pytest

import paddle
from paddle_dynafast.runtime.threads import ThreadCounts, current_threads, paddle_threads


@pytest.fixture()
def counts():
    """The counts now (the test skips on a Paddle build without MKL and OpenMP to read them from)."""
    before = current_threads()
    if before is None:
        pytest.skip("this Paddle build has no libmklml_intel.so / libiomp5.so to read the thread counts from")
    yield before
    assert current_threads() == before  # each test leaves them as it found them


def test_the_count_inside_and_the_counts_before_it_after(counts):
    assert isinstance(counts, ThreadCounts)
    with paddle_threads(3):
        inside = current_threads()
        x = paddle.matmul(paddle.ones([64, 64]), paddle.ones([64, 64]))  # a kernel runs as usual
    assert inside.openmp == 3 and float(x[0, 0]) == 64.0
    assert inside.mkl == 3 or (inside.mkl < 3 and inside.mkl <= (os.cpu_count() or 1))  # MKL caps it at the cores
    assert current_threads() == counts


def test_a_count_set_earlier_is_what_comes_back(counts):
    with paddle_threads(counts.openmp):  # puts back the counts before this test, MKL's and OpenMP's, whatever they are
        paddle.base.core.set_num_threads(2)  # as a script or another library might have
        earlier = current_threads()
        assert earlier.openmp == 2
        with paddle_threads(1):
            assert current_threads() == ThreadCounts(1, 1)
        assert current_threads() == earlier


def test_the_counts_come_back_after_an_error(counts):
    with pytest.raises(RuntimeError, match="a batch failed"):
        with paddle_threads(4):
            raise RuntimeError("a batch failed")
    assert current_threads() == counts


def test_another_threads_openmp_count_is_its_own(counts):
    def in_another_thread():
        seen = []
        worker = threading.Thread(target=lambda: seen.append(current_threads().openmp))
        worker.start()
        worker.join()
        return seen[0]

    before = in_another_thread()
    with paddle_threads(before + 2):
        assert in_another_thread() == before and current_threads().openmp == before + 2
