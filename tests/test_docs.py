"""The Python examples of README.md and docs/ run as written, on a tiny run.

Every fenced block whose info string is ``python`` is run; a block marked ``python no-run`` is shown only (none is,
today). The blocks of a page run in order, each in a fresh namespace, in one process whose working directory holds
what the pages assume: ``my_model/`` (a tiny random BERT in Hugging Face format), ``my_data/`` (the toy task) and
``runs/demo/`` (a copy of the tiny pipeline run, int8 and calibrated on measured time, as ``make demo`` makes it).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(python[^\n]*)\n(.*?)^```$", re.M | re.S)


def python_blocks(page: Path):
    """``(info string, code)`` of every fenced Python block of ``page``."""
    return [(m.group(1).strip(), m.group(2)) for m in FENCE.finditer(page.read_text(encoding="utf-8"))]


RUNNABLE = {page.name: [code for info, code in python_blocks(page) if info == "python"] for page in PAGES}

RUNNER = """
import sys
for i, path in enumerate(sys.argv[1:]):
    print(f"=== block {i}", flush=True)
    code = open(path, encoding="utf-8").read()
    exec(compile(code, path, "exec"), {"__name__": "__main__"})
"""


def test_every_python_block_is_run_or_marked():
    """A block is run (``python``) or explicitly shown only (``python no-run``); the pages do hold examples."""
    for page in PAGES:
        for info, _ in python_blocks(page):
            assert info in ("python", "python no-run"), f"{page.name}: a ```{info} block"
    assert len(RUNNABLE["README.md"]) == 1 and len(RUNNABLE["python.md"]) >= 5


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_pipeline_run, toy_data):
    from helpers import tiny_hf_weights, write_hf_dir

    config, _ = tiny_pipeline_run
    root = tmp_path_factory.mktemp("docs")
    write_hf_dir(root / "my_model", tiny_hf_weights(seed=0))
    shutil.copytree(toy_data, root / "my_data")
    shutil.copytree(config.output_dir, root / "runs" / "demo", ignore=shutil.ignore_patterns("benchmark"),
                    symlinks=True)
    return root


@pytest.mark.parametrize("page", [name for name, blocks in RUNNABLE.items() if blocks])
def test_the_python_examples_run_as_written(workdir, page, tmp_path):
    paths = []
    for i, code in enumerate(RUNNABLE[page]):
        paths.append(tmp_path / f"{Path(page).stem}_{i}.py")
        paths[-1].write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", RUNNER, *map(str, paths)], cwd=workdir, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, f"{page}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    outputs = done.stdout.split("=== block ")[1:]
    assert len(outputs) == len(paths)
    for i, output in enumerate(outputs):
        assert output.split("\n", 1)[1].strip(), f"{page}, block {i} printed nothing"
    if page == "README.md":  # the labels of the two texts, then their exit layers, then the promise
        first = outputs[0].splitlines()[1]
        assert re.fullmatch(r"\['\d', '\d'\] \[\d \d\]", first), first
        assert "at most 2 points below the teacher" in outputs[0]


def test_the_readme_is_a_first_screen():
    """At most 200 lines, predict and serve within the first 80, the headline between its markers, no issue
    numbers in the README or the docs, and every page it links to exists."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200
    first = "\n".join(lines[:80])
    assert "paddle-dynafast predict --model" in first and "paddle-dynafast serve --model" in first
    assert "<!-- headline -->" in lines and "<!-- /headline -->" in lines
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"#\d", text), (page.name, re.search(r".{0,40}#\d.{0,40}", text).group(0))
        for target in re.findall(r"\]\(((?:docs/)?[\w-]+\.md)(?:#[\w-]*)?\)", text):
            path = (ROOT / target) if page.name == "README.md" else (ROOT / "docs" / target)
            assert path.is_file(), f"{page.name} links to {target}, which is missing"


def test_the_readme_headline_numbers_are_in_the_results():
    """Every number of the README's headline table appears in docs/results.md (benchmarks/report.py
    --check-readme), so the two cannot disagree."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report.py"), "--output", str(ROOT / "docs"),
                           "--check-readme", str(ROOT / "README.md")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
