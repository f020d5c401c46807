"""Kubernetes tests: the `kube` marker is registered in pyproject.toml and the cluster
fixtures are loaded by tests/conftest.py (harness.kube.fixtures)."""
