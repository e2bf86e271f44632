"""Kubernetes NetworkPolicies evaluated offline: may this pod open a connection to that one (or to an address outside
the cluster) on this port? For tests/test_kubernetes.py, which checks deploy/kubernetes/'s policies with it; the
subset of the API that base uses (label selectors, pod and namespace selectors, numbered ports), failing on the rest."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    """A pod (its namespace and labels), or an address outside the cluster (namespace None): the database, Slack."""
    name: str
    namespace: str | None
    labels: tuple[tuple[str, str], ...] = ()


def selects(selector: dict, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) applied to ``labels``."""
    assert set(selector) <= {"matchLabels", "matchExpressions"}, selector
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
                   "Exists": key in labels, "DoesNotExist": key not in labels}[operator]
        if not matched:
            return False
    return True


def peer_matches(rule_peers: list[dict] | None, peer: Peer, policy_namespace: str) -> bool:
    """A rule's `from`/`to` list: absent or empty means every address; a pod selector alone means pods of the
    policy's namespace; a namespace selector selects pods only (an outside address matches neither)."""
    if not rule_peers:
        return True
    for item in rule_peers:
        assert "ipBlock" not in item, "ipBlock: extend this evaluator"
        if peer.namespace is None:
            continue
        in_namespace = selects(item["namespaceSelector"], {}) if "namespaceSelector" in item else peer.namespace == policy_namespace
        if in_namespace and selects(item.get("podSelector", {}), dict(peer.labels)):
            return True
    return False


def port_matches(rule_ports: list[dict] | None, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        assert isinstance(entry["port"], int), "named ports: extend this evaluator"
        if entry.get("protocol", "TCP") == protocol and entry["port"] == port:
            return True
    return False


def allowed(policies: list[dict], namespace: str, source: Peer, destination: Peer, port: int, protocol: str = "TCP") -> bool:
    """Whether ``source`` may open a connection to ``destination``:``port``. Each side that some policy selects
    (for that direction) needs a rule of one of those policies that lets the other side through. ``policies`` are
    those of ``namespace``."""
    def side(pod: Peer, direction: str, other: Peer) -> bool:
        if pod.namespace != namespace:
            return True  # no policy of this base selects it
        kind, key, peers = ("Egress", "egress", "to") if direction == "out" else ("Ingress", "ingress", "from")
        applying = [p for p in policies if kind in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], dict(pod.labels))]
        if not applying:
            return True
        return any(peer_matches(rule.get(peers), other, namespace) and port_matches(rule.get("ports"), port, protocol)
                   for p in applying for rule in p["spec"].get(key, []))
    return side(source, "out", destination) and side(destination, "in", source)
