"""The real image, run with podman: ready fast, non-root, read-only root, clean SIGTERM."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from harness.genesis import GenesisFactory
from harness.kube.images import podman
from harness.processes import free_port
from harness.redis import RedisServer
from image.genesis_image import BuiltImage, ContainerFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.container]

GRACE_SECONDS = 10


def test_ready_within_seconds_on_a_read_only_root(run_container: ContainerFactory) -> None:
    container = run_container("--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges")
    seconds = container.wait_ready(timeout=15)
    print(f"/readyz answered {seconds:.2f} s after podman run returned")
    assert seconds < 10
    # Writes fail everywhere except /tmp (a tmpfs under --read-only).
    denied = container.exec("python3", "-c", "open('/app/probe', 'w')")
    assert denied.returncode != 0
    assert "Read-only file system" in denied.stderr
    assert container.exec("python3", "-c", "open('/tmp/probe', 'w').write('x')").returncode == 0


def test_runs_as_uid_10001(run_container: ContainerFactory) -> None:
    container = run_container("--read-only")
    container.wait_ready()
    assert container.exec("id", "-u").stdout.strip() == "10001"
    # PID 1 is genesis itself (exec-form entrypoint), not a shell, and not root.
    status = container.exec("cat", "/proc/1/status").stdout
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert set(uids) == {"10001"}
    cmdline = container.exec("cat", "/proc/1/cmdline").stdout.split("\0")
    assert cmdline[1:3] == ["/opt/venv/bin/genesis", "serve"], cmdline


def test_sigterm_exits_zero_within_the_grace_period(run_container: ContainerFactory) -> None:
    container = run_container(
        "--read-only",
        env={"GENESIS_GRACE_SECONDS": str(GRACE_SECONDS), "GENESIS_DRAIN_SECONDS": "1"},
    )
    container.wait_ready()
    started = time.monotonic()
    # podman stop sends SIGTERM, and SIGKILL only after --time seconds.
    podman("stop", "--time", str(GRACE_SECONDS + 20), container.name)
    took = time.monotonic() - started
    state = json.loads(podman("inspect", container.name).stdout)[0]["State"]
    print(f"stopped in {took:.2f} s, exit code {state['ExitCode']}")
    assert state["ExitCode"] == 0
    assert took < GRACE_SECONDS
    logs = podman("logs", container.name)
    assert '"stopped"' in logs.stdout + logs.stderr


def test_healthcheck_runs_against_livez(run_container: ContainerFactory) -> None:
    # podman schedules healthchecks with systemd timers, absent here: run the check by hand.
    container = run_container("--read-only")
    container.wait_ready()
    result = podman("healthcheck", "run", container.name, check=False)
    assert result.returncode == 0, result.stderr


def test_metrics_port_answers_inside_the_container(run_container: ContainerFactory) -> None:
    container = run_container("--read-only")
    container.wait_ready()
    script = (
        "import urllib.request; "
        "print(urllib.request.urlopen('http://127.0.0.1:9464/metrics', timeout=2).read().decode())"
    )
    metrics = container.exec("python3", "-c", script).stdout
    assert "genesis_build_info" in metrics


def test_the_entrypoint_runs_other_commands(genesis_image: BuiltImage) -> None:
    # The worker will run from this image as `args: [worker]`: the entrypoint takes any command.
    result = podman("run", "--rm", "--read-only", genesis_image.ref, "--version")
    assert result.stdout.strip() == f"genesis {genesis_image.result.version}"


def test_oci_labels_and_config(genesis_image: BuiltImage) -> None:
    config = json.loads(podman("image", "inspect", genesis_image.ref).stdout)[0]
    labels = config["Labels"]
    result = genesis_image.result
    prefix = "org.opencontainers.image."
    assert labels[prefix + "version"] == result.version
    assert labels[prefix + "licenses"] == "Apache-2.0"
    assert labels[prefix + "source"].startswith("https://github.com/")
    assert labels[prefix + "description"]
    assert labels[prefix + "created"].endswith("Z")
    revision = labels[prefix + "revision"]
    assert any(tag.endswith(f":sha-{revision[:7]}") for tag in result.tags), result.tags
    assert config["Config"]["User"] == "10001:10001"
    assert config["Config"]["Entrypoint"] == ["genesis"]
    assert config["Config"]["Cmd"] == ["serve"]
    assert "GENESIS_HOST=0.0.0.0" in config["Config"]["Env"]
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "python3"]


def test_sbom_lists_exactly_what_the_image_installs(genesis_image: BuiltImage) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = genesis_image.result.sbom.read_text()
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, error
    sbom = json.loads(text)
    listed = {(c["name"], c["version"]) for c in sbom["components"]}
    root = sbom["metadata"]["component"]
    listed.add((root["name"], root["version"]))
    script = (
        "import json, importlib.metadata as m; "
        "print(json.dumps(sorted({(d.metadata['Name'].lower().replace('_', '-'), d.version) "
        "for d in m.distributions()})))"
    )
    out = podman("run", "--rm", "--entrypoint", "python3", genesis_image.ref, "-c", script)
    installed = {tuple(item) for item in json.loads(out.stdout)}
    assert installed == listed
    # Nothing installs packages at run time: pip is not in the image.
    assert not any(name == "pip" for name, _ in installed)
    assert all(c["hashes"][0]["alg"] == "SHA-256" for c in sbom["components"])
    dependencies = {d["ref"]: d.get("dependsOn", []) for d in sbom["dependencies"]}
    assert "pkg:pypi/quart@" in " ".join(dependencies[root["bom-ref"]])


def test_the_image_carries_the_redis_extra(run_container: ContainerFactory) -> None:
    # Replicas share rate limits, the cache and jobs through GENESIS_REDIS_URL.
    container = run_container("--read-only")
    container.wait_ready()
    found = container.exec("/opt/venv/bin/python", "-c", "import redis; print(redis.__version__)")
    assert found.returncode == 0, found.stderr


def test_the_worker_runs_jobs_from_the_image(
    genesis_image: BuiltImage, genesis_server: GenesisFactory, redis_server: RedisServer
) -> None:
    """`genesis worker` from the image, hardened as the chart runs it (read-only root, no
    capabilities, UID 10001), runs a job a `genesis serve` queued on a real Redis."""
    name = f"genesis-image-worker-{free_port()}"
    metrics_port = free_port()
    podman(
        "run",
        "--detach",
        "--name",
        name,
        # The test's Redis listens on 127.0.0.1 only.
        "--network",
        "host",
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "-e",
        f"GENESIS_REDIS_URL={redis_server.url}",
        "-e",
        f"GENESIS_METRICS_PORT={metrics_port}",
        genesis_image.ref,
        "worker",
    )
    try:
        server = genesis_server({"GENESIS_REDIS_URL": redis_server.url})
        body = {"model": "genesis-offline-demo", "messages": [{"role": "user", "content": "hi"}]}
        created = httpx.post(f"{server.url}/v1/jobs", json=body, timeout=10)
        assert created.status_code == 202, created.text
        job = created.json()
        deadline = time.monotonic() + 60
        while job["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, (
                f"the job never finished: {job}\n{podman('logs', name).stderr}"
            )
            time.sleep(0.2)
            job = httpx.get(f"{server.url}/v1/jobs/{job['id']}", timeout=10).json()
        assert job["status"] == "succeeded", job
        assert 'You said: "hi"' in job["result"]["choices"][0]["message"]["content"]
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert (
            'genesis_jobs_finished_total{outcome="succeeded",queue="chat",track="stable"} 1.0'
            in metrics
        )
        state = json.loads(podman("inspect", name).stdout)[0]
        assert state["State"]["Running"] is True
        assert state["Config"]["User"].split(":")[0] == "10001"
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)
