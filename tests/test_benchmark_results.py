"""RESULTS.md and README quote benchmark numbers through generated blocks: they must match the JSON they cite."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _renderer():
    spec = importlib.util.spec_from_file_location("render_results", ROOT / "benchmarks" / "render_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("doc", ["benchmarks/RESULTS.md", "README.md"])
def test_generated_blocks_match_their_json(doc):
    render = _renderer().render
    text = (ROOT / doc).read_text()
    new, changed = render(text, ROOT)
    assert not changed, f"{doc}: blocks {changed} differ from their JSON; run python benchmarks/render_results.py"
    assert new == text


def test_every_block_cites_an_existing_json_and_a_known_renderer():
    mod = _renderer()
    seen = set()
    for doc in ("benchmarks/RESULTS.md", "README.md"):
        for m in mod.BLOCK.finditer((ROOT / doc).read_text()):
            assert m["name"] in mod.RENDERERS
            json.loads((ROOT / m["src"]).read_text())
            seen.add(m["name"])
    assert {"levels45-level4", "kernels-forward", "demo-time", "readme-demo-time"} <= seen


def test_a_changed_number_is_caught(tmp_path):
    """The check is not vacuous: edit one number in the JSON and the block no longer matches."""
    mod = _renderer()
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    m = next(b for b in mod.BLOCK.finditer(text) if b["name"] == "demo-time")
    data = json.loads((ROOT / m["src"]).read_text())
    data["wall_s"] += 600
    (tmp_path / m["src"]).parent.mkdir(parents=True)
    (tmp_path / m["src"]).write_text(json.dumps(data))
    _, changed = mod.render(m.group(0), tmp_path)
    assert changed == ["demo-time"]


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")))
def test_every_benchmark_script_compiles(script):
    """A benchmark that does not parse cannot regenerate its numbers (benchmarks are not run in CI)."""
    import py_compile

    py_compile.compile(str(ROOT / "benchmarks" / script), doraise=True)
