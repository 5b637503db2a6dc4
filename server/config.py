"""Server configuration: one frozen dataclass, built once by launch_server."""

from __future__ import annotations

from dataclasses import dataclass, field

from runtime.artifact import Artifact
from runtime.config import RuntimeConfig


@dataclass(frozen=True)
class ServerConfig:
    # The built artifact, opened once by launch_server (which builds checkpoints first). It
    # is os.PathLike, so code that wants the directory gets it.
    artifact: Artifact
    model_path: str  # what the user passed, reported by /get_model_info
    served_model_name: str
    host: str = "127.0.0.1"
    port: int = 30000
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    max_inputs_per_request: int = 2048
    max_rerank_documents: int = 1000  # documents per rerank request; more: 400
    rerank_truncate: bool = True  # over-long (query, document) pairs: cut the document, or 400
    # Reliability and security limits (see README "Limits, auth, health, metrics").
    max_request_bytes: int = 16 * 1024 * 1024  # larger bodies: 413, never read in full
    api_key: str | None = field(default=None, repr=False)  # None: no auth
    drain_timeout_s: int = 30  # SIGTERM: how long in-flight requests may take to finish
    drain_delay_s: float = 0.0  # SIGTERM: /ready says 503 this long before the listener closes
    aliases: tuple[str, ...] = ()  # more names a request's `model` may use (server/models.py)
    # The other models this appliance serves (--model-path repeated, --models-file), each
    # with its own config; the server-wide fields (host, port, key, limits) are this one's.
    more_models: tuple["ServerConfig", ...] = ()

    @property
    def models(self) -> tuple["ServerConfig", ...]:
        """Every served model's config, in launch order (this one first)."""
        return (self, *self.more_models)
