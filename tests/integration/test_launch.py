"""launch_server on a checkpoint dir: built on first use by a separate builder process."""

from __future__ import annotations

from pathlib import Path

import httpx

from runtime.manifest import Manifest
from server.launch_server import artifact_dir
from tests.helpers import running_server, server_pid


def test_checkpoint_is_built_on_first_use_and_served_without_torch(tmp_path: Path,
                                                                   minilm_path: Path) -> None:
    cache = tmp_path / "cache"
    with running_server(minilm_path, "--allow-auto-truncate", cache=cache) as url:
        artifact = artifact_dir(str(minilm_path), cache)
        assert Manifest.load(artifact).spec.family == "bert"
        # The serving process never loaded torch: the build ran in its own process.
        maps = Path(f"/proc/{server_pid(url)}/maps").read_text()
        assert "libtorch" not in maps and "onnxruntime" in maps
        # --allow-auto-truncate: an over-long input is cut to the maximum, not refused.
        r = httpx.post(f"{url}/v1/embeddings", json={"input": "word " * 400}, timeout=60)
        assert r.status_code == 200
        assert r.json()["usage"]["prompt_tokens"] == 256
