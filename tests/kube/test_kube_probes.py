"""The trap harness.kube.probes avoids, shown on the node's real conntrack table.

A connection refused because a NodePort has no endpoints yet leaves an un-NATed SYN_SENT entry
behind; the probes put those entries on source ports below the ephemeral range, where no other
client of the machine gets its ports from.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from harness.kube import probes
from harness.kube.access import KubeCluster
from harness.kube.workloads import node_port_service

pytestmark = [pytest.mark.kube, pytest.mark.integration]

_ENTRY = re.compile(r"(\w+) src=\S+ dst=\S+ sport=(\d+) dport=(\d+) .*?src=(\S+) ")


def _entries(node_port: int) -> list[tuple[str, int, str]]:
    """(state, source port, reply source address) of each TCP conntrack entry to node_port."""
    listing = subprocess.run(
        ["conntrack", "-L", "-p", "tcp", "--orig-port-dst", str(node_port)],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    found = []
    for line in listing.splitlines():
        match = _ENTRY.search(line)
        if match:
            found.append((match.group(1), int(match.group(2)), match.group(4)))
    return found


def test_a_refused_probe_leaves_its_stale_entry_on_a_pool_port(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    if not kube_cluster.started_here():
        pytest.skip("reads the node's conntrack table: only for the cluster this harness runs")
    # A Service whose selector matches no pod: kube-proxy REJECTs every connection to it.
    kube_cluster.kubectl.apply(node_port_service("nobody"), namespace=kube_namespace)
    url = kube_cluster.service_url("nobody", kube_namespace)
    node_port = int(url.rsplit(":", 1)[1])

    with pytest.raises(AssertionError, match=r"never answered 200 .*Connection refused"):
        probes.wait_until_ok(url, timeout=3, interval=0.2)

    low = int(probes.EPHEMERAL_RANGE.read_text().split()[0])
    entries = _entries(node_port)
    stale = [entry for entry in entries if entry[0] == "SYN_SENT"]
    # The trap is real: refused SYNs stay in the table, not NATed to any pod (the reply would
    # come from the NodePort's own address), until nf_conntrack_tcp_timeout_syn_sent runs out.
    assert stale, f"no SYN_SENT entry left for NodePort {node_port}: {entries}"
    assert all(reply.startswith("127.") for _, _, reply in stale), stale
    # And the probes kept it on their own ports, out of every other client's way.
    ports = sorted(port for _, port, _ in entries)
    assert all(low - probes.POOL_SIZE <= port < low for port in ports), (ports, low)
