"""The artifact format: a built directory (directory.py: Artifact, opened once), its
manifest (manifest.py) and the cache of first-use builds (cache.py). Imports the backends'
plan record and nothing of the pipeline."""

from runtime.artifact.directory import Artifact

__all__ = ["Artifact"]
