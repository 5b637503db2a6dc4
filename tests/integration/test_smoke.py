import httpx


def test_seed_request_smoke(minilm_server: str) -> None:
    r = httpx.post(f"{minilm_server}/v1/embeddings", json={
        "model": "Qwen/Qwen3-Embedding-4B", "input": "What is the capital of France?",
        "encoding_format": "float"})
    assert r.status_code == 200
    assert len(r.json()["data"][0]["embedding"]) == 384
