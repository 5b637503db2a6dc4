"""Several models in one appliance (issue 29), through HTTP on the real launcher: the real
all-MiniLM embedder and two tiny rerankers of two families (a BERT cross-encoder and a
Qwen3-Reranker), given by a repeated --model-path and by env MODELS at once. Routing by
`model` on every route, 404 model_not_found, /v1/models and the info routes per model,
/metrics labelled by model, readiness, and a start that fails naming the broken model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest

from runtime.artifact import Artifact
from runtime.config import RuntimeConfig
from runtime.pipeline.embedder import Embedder
from server.config import ServerConfig
from tests.helpers import (ROOT, assert_parity, build_artifact, decode_embeddings,
                           running_server, st_reference)
from tests.inprocess import gated_embedder, metric, serve, wait_for

TEXTS = ["The cat sat on the mat.", "A quick brown fox jumps over the lazy dog.",
         "Embeddings map text to vectors."]
QUERY = "What is the capital of France?"
DOCS = ["Paris is the capital of France.", "a", "The quick brown fox.", "long " * 80]
MODEL_ROUTES: dict[str, dict[str, Any]] = {  # every route that takes `model`, with a body it accepts
    "/v1/embeddings": {"input": "x"}, "/embed": {"inputs": "x"}, "/encode": {"text": "x"},
    "/v1/rerank": {"query": "q", "documents": ["d"]}, "/rerank": {"query": "q", "texts": ["d"]},
    "/v2/rerank": {"query": "q", "documents": ["d"]}, "/v1/score": {"query": "q", "items": ["d"]}}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory, minilm_artifact: Path,
              reranker_paths: dict[str, Path]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("multi")
    return {"minilm": minilm_artifact,
            "ce": build_artifact(reranker_paths["cross_encoder"], root / "ce"),
            "qr": build_artifact(reranker_paths["qwen3_reranker"], root / "qr")}


@pytest.fixture(scope="module")
def url(artifacts: dict[str, Path]) -> Iterator[str]:
    """minilm and ce by a repeated --model-path, the Qwen3-Reranker by env MODELS."""
    models = f"qr {artifacts['qr']} --alias qwen-reranker --max-batch-tokens 512  # a comment"
    with running_server(artifacts["minilm"], "--model-path", str(artifacts["ce"]),
                        "--served-model-name", "minilm", "--served-model-name", "ce",
                        "--max-wait-ms", "2", env={"MODELS": models}) as base:
        yield base


def post(url: str, path: str, **body: Any) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=120)


def ce_reference(checkpoint: Path, raw: bool = False) -> np.ndarray:
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(checkpoint), device="cpu")
    kwargs = {"activation_fn": torch.nn.Identity()} if raw else {}
    return np.asarray(model.predict([(QUERY, d) for d in DOCS], convert_to_numpy=True,
                                    **kwargs))


def by_index(rows: list[dict], key: str) -> np.ndarray:
    return np.array([row[key] for row in sorted(rows, key=lambda r: r["index"])])


def test_ready_and_every_model_listed(url: str, artifacts: dict[str, Path]) -> None:
    assert httpx.get(url + "/ready", timeout=30).status_code == 200
    cards = {m["id"]: m for m in httpx.get(url + "/v1/models", timeout=30).json()["data"]}
    assert list(cards) == ["minilm", "ce", "qr"]
    assert (cards["minilm"]["kind"], cards["minilm"]["dimensions"],
            cards["minilm"]["max_model_len"]) == ("embedding", 384, 256)
    assert (cards["ce"]["kind"], cards["ce"]["dimensions"]) == ("rerank", None)
    assert cards["qr"]["kind"] == "rerank" and cards["qr"]["aliases"] == ["qwen-reranker"]
    assert cards["ce"]["root"] == str(artifacts["ce"])


def test_embeddings_route_by_name_path_and_default(url: str, minilm_path: Path,
                                                   artifacts: dict[str, Path]) -> None:
    reference = st_reference(minilm_path, TEXTS)
    for model in ("minilm", str(artifacts["minilm"]), None):
        r = post(url, "/v1/embeddings", input=TEXTS, **({"model": model} if model else {}))
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "minilm"
        assert_parity(decode_embeddings(r.json()), reference)
    tei = post(url, "/embed", inputs=TEXTS, model="minilm")  # TEI's shape, routed
    assert_parity(np.array(tei.json(), dtype=np.float32), reference)
    encoded = post(url, "/encode", text=TEXTS[0], model="minilm").json()
    assert_parity(np.array([encoded["embedding"]], dtype=np.float32), reference[:1])


def test_rerank_routes_by_name_path_alias_and_default(url: str, artifacts: dict[str, Path],
                                                      reranker_paths: dict[str, Path]) -> None:
    scores = ce_reference(reranker_paths["cross_encoder"])
    for body in ({"model": "ce"}, {"model": str(artifacts["ce"])}, {}):  # {}: 1st reranker
        r = post(url, "/v1/rerank", query=QUERY, documents=DOCS, **body)
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(by_index(r.json(), "score"), scores, atol=1e-4, rtol=0)
    raw = post(url, "/rerank", query=QUERY, texts=DOCS, raw_scores=True).json()
    np.testing.assert_allclose(by_index(raw, "score"), ce_reference(
        reranker_paths["cross_encoder"], raw=True), atol=1e-4, rtol=0)
    cohere = post(url, "/v2/rerank", model="ce", query=QUERY, documents=DOCS).json()
    np.testing.assert_allclose(by_index(cohere["results"], "relevance_score"), scores,
                               atol=1e-4, rtol=0)
    logits = post(url, "/v1/score", model="ce", query=QUERY, items=DOCS).json()["scores"]
    np.testing.assert_allclose([s[0] for s in logits], ce_reference(
        reranker_paths["cross_encoder"], raw=True), atol=1e-4, rtol=0)
    # The Qwen3-Reranker by its alias answers its own scores, not the cross-encoder's.
    qr = post(url, "/v1/rerank", model="qwen-reranker", query=QUERY, documents=DOCS).json()
    assert not np.allclose(by_index(qr, "score"), scores, atol=1e-3)
    same = post(url, "/v1/rerank", model="qr", query=QUERY, documents=DOCS).json()
    assert by_index(same, "score").tolist() == by_index(qr, "score").tolist()


def test_unknown_model_is_404_on_every_route(url: str) -> None:
    for path, body in MODEL_ROUTES.items():
        r = post(url, path, model="nope", **body)
        assert r.status_code == 404, (path, r.text)
        assert r.json() == {"error": {
            "message": "The model 'nope' does not exist here. This server serves: minilm, "
                       "ce, qr.", "type": "invalid_request_error", "param": "model",
            "code": "model_not_found"}}
    info = httpx.get(url + "/get_model_info", params={"model": "nope"}, timeout=30)
    assert info.status_code == 404 and info.json()["error"]["code"] == "model_not_found"
    assert httpx.get(url + "/ready", timeout=30).status_code == 200  # still healthy


def test_a_model_of_the_wrong_kind_is_400(url: str) -> None:
    r = post(url, "/v1/embeddings", model="ce", input="x")
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_model"
    r = post(url, "/v1/rerank", model="minilm", query="q", documents=["d"])
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_model"


def test_info_routes_per_model(url: str, artifacts: dict[str, Path]) -> None:
    one = httpx.get(url + "/get_model_info", params={"model": "qwen-reranker"}, timeout=30)
    assert one.json()["model_type"] == "qwen3_reranker" and "models" not in one.json()
    every = httpx.get(url + "/get_model_info", timeout=30).json()
    assert every["model_path"] == str(artifacts["minilm"])  # the first, as one model's
    assert [m["model_type"] for m in every["models"]] == ["bert", "cross_encoder",
                                                          "qwen3_reranker"]
    server = httpx.get(url + "/get_server_info", params={"model": "qr"}, timeout=30).json()
    assert server["served_model_name"] == "qr"
    assert server["runtime"]["batch"]["max_batch_tokens"] == 512  # its models-file flag
    first = httpx.get(url + "/get_server_info", timeout=30).json()
    assert first["runtime"]["batch"]["max_batch_tokens"] is None
    assert [m["served_model_name"] for m in first["models"]] == ["minilm", "ce", "qr"]


def test_metrics_carry_the_model(url: str) -> None:
    post(url, "/v1/embeddings", model="minilm", input="metrics")
    post(url, "/v1/rerank", model="qr", query="q", documents=["d"])
    text = httpx.get(url + "/metrics", timeout=30).text
    assert ('trt_embed_requests_total{model="minilm",path="/v1/embeddings",status="200"}'
            in text)
    assert 'trt_embed_requests_total{model="qr",path="/v1/rerank",status="200"}' in text
    for model in ("minilm", "ce", "qr"):
        assert f'trt_embed_batch_rows_count{{model="{model}"}}' in text
        assert f'trt_embed_queue_rows{{model="{model}"}}' in text
    assert 'trt_embed_prompt_tokens_total{model="minilm"}' in text


def test_mixed_concurrent_load_matches_each_models_own_answers(
        url: str, minilm_path: Path, reranker_paths: dict[str, Path]) -> None:
    """Embedding and rerank requests at once, on both models: each answer is its own
    input's, as each model answers alone (sentence-transformers' vectors, CrossEncoder's
    scores)."""
    texts = [f"{i}: sentence number {i} about {'rivers ' * (i % 7)}" for i in range(48)]
    vectors = st_reference(minilm_path, texts)
    scores = ce_reference(reranker_paths["cross_encoder"])

    def embed(i: int) -> None:
        chunk = texts[i % 12 * 4:i % 12 * 4 + 4]
        r = post(url, "/v1/embeddings", model="minilm", input=chunk)
        assert_parity(decode_embeddings(r.json()), vectors[i % 12 * 4:i % 12 * 4 + 4])

    def rerank(i: int) -> None:
        order = [(i + k) % len(DOCS) for k in range(len(DOCS))]
        r = post(url, "/v1/rerank", model="ce", query=QUERY, documents=[DOCS[k] for k in order])
        got = {order[row["index"]]: row["score"] for row in r.json()}
        np.testing.assert_allclose([got[k] for k in range(len(DOCS))], scores, atol=1e-4)

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(embed if i % 2 else rerank, i) for i in range(64)]
        for future in futures:
            future.result()


def test_a_flood_held_on_one_model_does_not_hold_the_other(
        artifacts: dict[str, Path], minilm_path: Path, reranker_paths: dict[str, Path]) -> None:
    """A flood on minilm whose backend is held (a gate in front of the real ONNX Runtime
    session, tests/inprocess.py): while every flood request waits, the cross-encoder's
    requests are all answered, with their own scores; then the flood is released and each
    of its answers is its own input's. Nothing here depends on timing."""
    runtime = RuntimeConfig(threads=1)
    flooded, gate = gated_embedder(artifacts["minilm"], runtime)
    configs = [ServerConfig(artifact=Artifact.open(artifacts[name]), runtime=runtime,
                            model_path=str(artifacts[name]), served_model_name=name)
               for name in ("minilm", "ce")]
    config = replace(configs[0], more_models=(configs[1],))
    texts = [f"flood {i}: {'words ' * (i % 9)}" for i in range(64)]
    scores = ce_reference(reranker_paths["cross_encoder"])
    with serve(config, [flooded, Embedder.load(artifacts["ce"], runtime)]) as (base, app):
        wait_for(lambda: httpx.get(base + "/ready").status_code == 200, "warm-up")
        gate.gate.clear()
        with ThreadPoolExecutor(32) as pool:
            flood = [pool.submit(post, base, "/v1/embeddings", model="minilm", input=[t])
                     for t in texts]
            wait_for(lambda: gate.entered.is_set() and metric(
                app, "trt_embed_queue_rows", model="minilm") > 0, "the flood to queue")
            for _ in range(5):  # the other model answers while the flood is held
                r = post(base, "/v1/rerank", model="ce", query=QUERY, documents=DOCS)
                np.testing.assert_allclose(by_index(r.json(), "score"), scores, atol=1e-4)
            assert not any(f.done() for f in flood)
            gate.gate.set()
            got = np.concatenate([decode_embeddings(f.result().json()) for f in flood])
    assert_parity(got, st_reference(minilm_path, texts))


def test_a_model_that_cannot_load_fails_the_start_naming_it(tmp_path: Path,
                                                            artifacts: dict[str, Path]) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(artifacts["ce"], broken)
    (broken / "model.onnx").write_bytes(b"this is not an ONNX protobuf" * 100)
    models = tmp_path / "models.txt"
    models.write_text(f"good {artifacts['ce']}\nbad {broken} --max-batch-tokens 256\n")
    done = subprocess.run([sys.executable, "-m", "server.launch_server", "--models-file",
                           str(models), "--port", "1"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if "startup failed" in ln]
    assert len(lines) == 1 and f"model 'bad' ({broken}):" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_models_that_do_not_fit_the_memory_refuse_the_start(artifacts: dict[str, Path]) -> None:
    """--memory-budget-gib states the memory (as a container's limit would): the two
    models' weights and largest batches need more, so the start is refused in one line
    naming both, before either loads."""
    done = subprocess.run([sys.executable, "-m", "server.launch_server", "--model-path",
                           str(artifacts["minilm"]), "--model-path", str(artifacts["ce"]),
                           "--served-model-name", "emb", "--served-model-name", "rr",
                           "--memory-budget-gib", "0.01", "--port", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if "startup failed" in ln]
    assert len(lines) == 1, done.stderr
    assert "the models need" in lines[0] and "GiB of RAM but 0.01 GiB is available" in lines[0]
    assert "(emb " in lines[0] and ", rr " in lines[0] and "Traceback" not in done.stderr
    assert "ready" not in done.stderr  # nothing was served


def test_the_container_entrypoint_serves_the_models_of_env_models(
        artifacts: dict[str, Path]) -> None:
    """docker/entrypoint.sh as a container runs it, MODEL unset and MODELS set: the two
    models are served (not the bundled default), by their names."""
    from server.flags import environment
    from tests.helpers import free_port, wait_healthy

    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k not in environment()},
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
           "HOST": "127.0.0.1", "PORT": str(port),
           "MODELS": f"emb {artifacts['minilm']}\nrr {artifacts['ce']} --max-wait-ms 2"}
    proc = subprocess.Popen([str(ROOT / "docker" / "entrypoint.sh")], cwd=ROOT, env=env)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, timeout_s=300)
        cards = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=30).json()["data"]
        assert [(c["id"], c["kind"]) for c in cards] == [("emb", "embedding"), ("rr", "rerank")]
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0  # drained and exited cleanly
