"""Family adapters: what differs between families around the one pipeline (runtime/pipeline/embedder.py).

base.py holds the contract, registry.py the one place a family name picks an adapter.
"""
