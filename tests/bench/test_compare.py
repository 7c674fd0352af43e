"""``python -m bench --compare TREE...`` runs the gateway of each checkout, not the bench's own."""

from __future__ import annotations

import shutil
from pathlib import Path

import bench.__main__ as bench

ROOT = Path(__file__).parents[2]


def test_each_tree_runs_its_own_code(tmp_path):
    tree = tmp_path / "tree"
    for package in ("gateway", "providers", "middlewares"):
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    entry = tree / "gateway" / "__main__.py"
    entry.write_text('import pathlib\n\npathlib.Path("ran-from-this-tree").touch()\n' + entry.read_text())
    config = bench.gateway_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/stream/v1")
    server = bench.start_gateway(tmp_path, config, "copy", tree)
    try:
        assert (tree / "ran-from-this-tree").exists()
    finally:
        server.stop()


def test_the_cache_variant_turns_the_cache_on_for_the_bench_client():
    config = bench.gateway_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/stream/v1")
    cached = bench.with_cache(config)
    assert cached.count("cache: true") == 1 and "  - name: default\n    cache: true\n" in cached
