"""Manifests of small workloads built on the local probe image, for tests of any cluster feature.

The probe image (genesis-kube-agent `serve`) answers "/" with its pod name and $VERSION and
"/healthz" with 200, and drains on SIGTERM: enough to watch readiness, rollouts and Services.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from harness.kube.images import PROBE_IMAGE
from harness.kube.probes import wait_until_ok

AGENT_PORT = 8080


def agent_deployment(
    name: str,
    *,
    version: str = "v1",
    replicas: int = 2,
    image: str = PROBE_IMAGE,
    drain_seconds: int = 2,
) -> dict[str, Any]:
    """A Deployment whose pods say `version`; a rolling update never drops serving capacity."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "minReadySeconds": 0,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": drain_seconds + 10,
                    "containers": [
                        {
                            "name": "agent",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "args": [] if image == PROBE_IMAGE else ["serve"],
                            "env": [{"name": "VERSION", "value": version}],
                            "ports": [{"name": "http", "containerPort": AGENT_PORT}],
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "periodSeconds": 1,
                                "failureThreshold": 1,
                            },
                            # Keep serving until kube-proxy has dropped the endpoint.
                            "lifecycle": {"preStop": {"sleep": {"seconds": drain_seconds}}},
                        }
                    ],
                },
            },
        },
    }


def node_port_service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": "NodePort",
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def fetch_json(url: str, timeout: float = 2.0) -> dict[str, str]:
    """GET `url` on a new connection, so each request goes through kube-proxy's rules afresh."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: dict[str, str] = json.loads(response.read())
        return body


def wait_for_answer(url: str, timeout: float = 30.0) -> dict[str, str]:
    """The first answer of a Service that may still be getting its endpoints.

    Probes come from their own source ports (harness.kube.probes says why): a refused one
    must not leave a stale conntrack entry in the way of the test's own traffic.
    """
    body: dict[str, str] = json.loads(wait_until_ok(url, timeout=timeout, interval=0.2))
    return body
