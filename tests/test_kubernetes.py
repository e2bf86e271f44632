"""deploy/kubernetes/ checked without a cluster: every built manifest against the Kubernetes schemas
(kubernetes-validate, strict), the rules of docs/kubernetes.md as data (security contexts, probes, resources, no
secret values, pinned images, the NATS cluster and its users), the NetworkPolicies evaluated for the connections
that must and must not happen, and the StatefulSet's nats-server flags run by a real 3-node nats-server cluster."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import subprocess
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from golive.shared.subjects import SERVICES
from tests.harness import REPO
from tests.network_policy import Peer, allowed, peer_matches, selects

BASE = REPO / "deploy" / "kubernetes"
# the oldest Kubernetes these manifests support, and the newest the installed kubernetes-validate ships schemas of
VERSIONS = ("1.31", kubernetes_validate.latest_version())
NAMESPACE = "golive"
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|WEBHOOK|DATABASE_URL|CREDS", re.IGNORECASE)
NATS_USER = re.compile(r"user:\s*(?P<user>\w+)\s+password:\s*\$(?P<variable>\w+)")


# --- building the kustomization -------------------------------------------------------------------------------

def build_from_resources(base: Path = BASE) -> list[dict]:
    """kustomization.yaml built by hand: its resources, and its ConfigMap generators (without kustomize's name
    hashes). Only the features this base uses: any other key fails, so this build cannot silently differ."""
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "resources", "configMapGenerator"}, set(kustomization)
    docs = [d for name in kustomization["resources"] for d in yaml.safe_load_all((base / name).read_text()) if d]
    for generator in kustomization.get("configMapGenerator", []):
        assert set(generator) <= {"name", "files", "literals"}, generator
        data = dict(literal.split("=", 1) for literal in generator.get("literals", []))
        data |= {Path(f).name: (base / f).read_text() for f in generator.get("files", [])}
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data})
    return docs


def build_with_kustomize(base: Path = BASE) -> list[dict] | None:
    """The base as `kubectl apply -k` builds it, when kubectl (or kustomize) is installed; else None."""
    if kubectl := shutil.which("kubectl"):
        command = [kubectl, "kustomize", str(base)]
    elif kustomize := shutil.which("kustomize"):
        command = [kustomize, "build", str(base)]
    else:
        return None
    built = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d]


@pytest.fixture(scope="module")
def manifests() -> list[dict]:
    return build_with_kustomize() or build_from_resources()


def of_kind(manifests: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in manifests if d["kind"] == kind}


def workloads(manifests: list[dict]) -> dict[str, dict]:
    return of_kind(manifests, "Deployment") | of_kind(manifests, "StatefulSet")


def containers(workload: dict) -> list[dict]:
    pod = workload["spec"]["template"]["spec"]
    return pod["containers"] + pod.get("initContainers", [])


def config_map(manifests: list[dict], name: str) -> dict[str, str]:
    """A ConfigMap's data by the name the manifests give it (kustomize's generated name ends with a hash)."""
    [found] = [d for d in of_kind(manifests, "ConfigMap").values() if re.fullmatch(rf"{name}(-[a-z0-9]+)?", d["metadata"]["name"])]
    return found["data"]


def service_deployment(manifests: list[dict], service: str) -> dict:
    return of_kind(manifests, "Deployment")[f"golive-{service}"]


def env_names(manifests: list[dict], container: dict) -> set[str]:
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        if ref := source.get("configMapRef"):
            names |= set(of_kind(manifests, "ConfigMap")[ref["name"]]["data"])
    return names


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def dockerfile_runtime() -> tuple[dict[str, str], dict[str, str]]:
    """The Dockerfile's runtime stage: its instructions (the last of each kind) and its environment."""
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    start = max(i for i, x in enumerate(parser.structure) if x["instruction"] == "FROM")
    return {i["instruction"]: i["value"] for i in parser.structure[start:]}, parser.envs


# --- the schemas --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(manifests, version):
    """Strict: an unknown or misspelled field fails as a wrong type does."""
    assert len(manifests) >= 20
    for doc in manifests:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']} (Kubernetes {version}): {error.message} at {error.path}")


def test_the_hand_build_is_what_kustomize_builds():
    """Without kubectl the tests read kustomization.yaml themselves: what they check is what `kubectl apply -k` applies
    (up to the hash kustomize appends to a generated ConfigMap's name)."""
    built = build_with_kustomize()
    if built is None:
        pytest.skip("neither kubectl nor kustomize is installed: nothing to compare the hand build with")
    unhashed = re.sub(r"\b(nats-config|golive-config)-[a-z0-9]{10}\b", r"\1", json.dumps(built, sort_keys=True))
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    assert sorted(json.loads(unhashed), key=key) == sorted(build_from_resources(), key=key)


# --- the workloads ------------------------------------------------------------------------------------------

def test_the_five_services_run_golive_serve_with_their_metrics_port(manifests):
    runtime, _ = dockerfile_runtime()
    port = int(runtime["EXPOSE"])
    services = {d["metadata"]["name"] for d in of_kind(manifests, "Deployment").values()}
    assert services == {f"golive-{name}" for name in SERVICES}
    for name in SERVICES:
        deployment = service_deployment(manifests, name)
        [container] = containers(deployment)
        assert container["command"] == ["golive", "serve", name, "--metrics-port", str(port)]
        assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": port}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}, (name, probe)
        # a Service per metrics port, for Prometheus, selecting exactly this Deployment's pods
        service = of_kind(manifests, "Service")[f"golive-{name}"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
        assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(port, "metrics")]
    # one driver per run (the lease): two coordinators are safe, and one stays through a drain
    assert service_deployment(manifests, "coordinator")["spec"]["replicas"] == 2
    assert of_kind(manifests, "PodDisruptionBudget")["golive-coordinator"]["spec"]["minAvailable"] == 1


def test_every_container_runs_unprivileged_with_probes_and_resources(manifests):
    """The restricted Pod Security Standard's rules, and what the scheduler and the kubelet need of each container."""
    for name, workload in workloads(manifests).items():
        pod = workload["spec"]["template"]["spec"]
        assert pod.get("automountServiceAccountToken") is False, name
        for container in containers(workload):
            context = pod.get("securityContext", {}) | container.get("securityContext", {})
            where = f"{name}/{container['name']}"
            assert context.get("runAsNonRoot") is True, where
            assert isinstance(context.get("runAsUser"), int) and context["runAsUser"] > 0, where  # numeric, verifiable
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert "ALL" in context.get("capabilities", {}).get("drop", []), where
            assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
            assert {"readinessProbe", "livenessProbe"} <= set(container), where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container.get("resources", {}).get(kind, {})), (where, kind)


def test_the_services_run_as_the_images_user_and_write_only_to_their_volumes(manifests):
    """readOnlyRootFilesystem: the state and artifacts directories the image names (Dockerfile ENV) are volumes."""
    runtime, env = dockerfile_runtime()
    uid, gid = (int(part) for part in runtime["USER"].split(":"))
    written = [Path(env["GOLIVE_STATE_DIR"]), Path(env["GOLIVE_ARTIFACTS_DIR"]), Path("/tmp")]
    for name in SERVICES:
        deployment = service_deployment(manifests, name)
        pod = deployment["spec"]["template"]["spec"]
        [container] = containers(deployment)
        assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = [Path(m["mountPath"]) for m in container["volumeMounts"] if "emptyDir" in volumes[m["name"]]]
        for path in written:
            assert any(path == mount or mount in path.parents for mount in mounts), (name, path)


def test_each_service_gets_what_docker_compose_gives_it(manifests):
    """The same variables as in docker-compose.yml (the ConfigMap's included), and its own NATS user."""
    services = compose()["services"]
    for name in SERVICES:
        [container] = containers(service_deployment(manifests, name))
        assert set(services[name]["environment"]) <= env_names(manifests, container), name
        user = {e["name"]: e for e in container["env"]}["GOLIVE_NATS_USER"]
        assert user["value"] == name


def test_no_secret_value_is_in_the_manifests(manifests):
    """Secrets are referenced by name (docs/kubernetes.md says how to create them), never written here."""
    assert not of_kind(manifests, "Secret")
    for name, data in ((n, d.get("data", {})) for n, d in of_kind(manifests, "ConfigMap").items()):
        if name.startswith("nats-config"):
            continue  # nats.conf: its passwords are $VARIABLES (test_the_nats_config_is_deploy_nats_conf)
        assert not [k for k in data if SECRET_NAME.search(k)], name
        assert not [v for v in data.values() if re.search(r"://[^/@\s]+@", v)], name  # no user:password@ in a URL
    documented = (REPO / "docs" / "kubernetes.md").read_text()
    for name, workload in workloads(manifests).items():
        for container in containers(workload):
            for variable in container.get("env", []):
                if SECRET_NAME.search(variable["name"]):
                    assert "value" not in variable, f"{name}: {variable['name']} is written in the manifest"
                    ref = variable["valueFrom"]["secretKeyRef"]
                    assert ref["name"] in documented and ref["key"] in documented, ref
            for source in container.get("envFrom", []):
                if ref := source.get("secretRef"):
                    assert ref["name"] in documented, ref


def test_images_are_pinned_to_the_versions_compose_runs(manifests):
    """nats: docker-compose.yml's tag (the nats-server the tests run, tests/test_compose.py); golive: this release."""
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    expected = {"nats": compose()["services"]["nats"]["image"], "golive": f"golive:{version}"}
    for name, workload in workloads(manifests).items():
        for container in containers(workload):
            image = container["image"]
            repository, _, tag = image.rpartition(":")
            assert tag and tag != "latest" and "/" not in tag, f"{name}: {image} is not pinned"
            assert image == expected[repository], name


# --- NATS ---------------------------------------------------------------------------------------------------

def nats_container(manifests: list[dict]) -> tuple[dict, dict]:
    statefulset = of_kind(manifests, "StatefulSet")["nats"]
    [container] = containers(statefulset)
    return statefulset, container


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_the_nats_config_is_deploy_nats_conf(manifests):
    """One source of truth for the users and permissions: the ConfigMap's nats.conf is the file compose runs."""
    assert config_map(manifests, "nats-config")["nats.conf"] == (REPO / "deploy" / "nats.conf").read_text(), \
        "deploy/kubernetes/nats.conf differs from deploy/nats.conf: cp deploy/nats.conf deploy/kubernetes/nats.conf"


def test_nats_is_a_three_node_jetstream_cluster_with_a_store_on_each_node(manifests):
    statefulset, container = nats_container(manifests)
    spec = statefulset["spec"]
    assert spec["replicas"] == 3
    args = container["args"]
    assert "-js" in args and flag(args, "--server_name") == "$(POD_NAME)"
    assert {e["name"]: e.get("valueFrom") for e in container["env"]}["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # the store on a volume claimed per node
    store = flag(args, "-sd")
    [claim] = [c["metadata"]["name"] for c in spec["volumeClaimTemplates"]]
    assert {m["mountPath"]: m["name"] for m in container["volumeMounts"]}[store] == claim
    # a route to every node, by the headless Service's per-pod DNS names
    service = of_kind(manifests, "Service")[spec["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    nodes = [f"{statefulset['metadata']['name']}-{i}.{spec['serviceName']}" for i in range(spec["replicas"])]
    assert flag(args, "--routes").split(",") == [f"nats://{node}:6222" for node in nodes]
    assert flag(args, "--cluster").endswith(":6222")
    # the ports the Services and probes use are those nats.conf listens on
    conf = config_map(manifests, "nats-config")["nats.conf"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"client": int(re.search(r"^port: (\d+)", conf, re.M)[1]),  # type: ignore[index]
                     "monitor": int(re.search(r"^http_port: (\d+)", conf, re.M)[1]), "cluster": 6222}  # type: ignore[index]
    # the services connect to every node and create their streams and buckets with a replica on each
    config = config_map(manifests, "golive-config")
    assert config["GOLIVE_NATS_URL"].split(",") == [f"nats://{node}:4222" for node in nodes]
    assert int(config["GOLIVE_STREAM_REPLICAS"]) == spec["replicas"]


def test_every_services_nats_user_and_password_are_those_of_the_nats_config(manifests):
    users = {m["user"]: m["variable"] for m in NATS_USER.finditer((REPO / "deploy" / "nats.conf").read_text())}
    assert set(SERVICES) < set(users)
    _, container = nats_container(manifests)
    [nats_secret] = [s["secretRef"]["name"] for s in container["envFrom"]]
    for name in SERVICES:
        [service] = containers(service_deployment(manifests, name))
        env = {e["name"]: e for e in service["env"]}
        assert env["GOLIVE_NATS_USER"]["value"] == name
        # the server reads $<variable> from the Secret the service reads its password from, under the same key
        assert env["GOLIVE_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": nats_secret, "key": users[name]}


@dataclass
class Node:
    name: str
    client: int
    http: int
    route: int
    proc: subprocess.Popen | None = field(default=None, repr=False)


def on_loopback(args: list[str], node: Node, nodes: list[Node], config: Path, store: Path) -> list[str]:
    """The StatefulSet's nats-server arguments for one node on this host: its name for $(POD_NAME), loopback ports for
    the pods' DNS names and fixed ports (never 4222, which another server here holds); every other flag as it is."""
    dns = {f"nats-{i}.nats:6222": f"127.0.0.1:{n.route}" for i, n in enumerate(nodes)}
    local = []
    for arg in args:
        arg = arg.replace("$(POD_NAME)", node.name).replace("/etc/nats/nats.conf", str(config))
        arg = arg.replace("0.0.0.0:6222", f"127.0.0.1:{node.route}")
        for name, address in dns.items():
            arg = arg.replace(name, address)
        local.append(arg)
    local[local.index("-sd") + 1] = str(store / node.name)
    return [*local, "-a", "127.0.0.1", "-p", str(node.client), "-m", str(node.http)]


def jsz(node: Node) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http}/jsz", timeout=2) as answer:
        return json.loads(answer.read())


@pytest.fixture
def statefulset_on_loopback(tmp_path):
    """Three nats-servers started with the StatefulSet's command and the ConfigMap's nats.conf, the passwords in
    their environment as the Secret would put them; stopped (by PID) after the test."""
    import os
    import time

    from golive.stack.nats_server import nats_server_binary
    from golive.stack.process import free_port, stop_process, wait_for_port

    manifests = build_from_resources()
    statefulset, container = nats_container(manifests)
    config = tmp_path / "nats.conf"
    config.write_text(config_map(manifests, "nats-config")["nats.conf"])
    users = {m["user"]: m["variable"] for m in NATS_USER.finditer(config.read_text())}
    # as docs/kubernetes.md makes them: nats-server parses a $VARIABLE's value as configuration, so a password must
    # read as a string there (a leading letter; a leading '-', digits alone or a ',' stop the server)
    passwords = {user: f"p{secrets.token_hex(24)}" for user in users}
    env = {**os.environ, **{users[u]: p for u, p in passwords.items()}}
    nodes = [Node(f"nats-{i}", free_port(), free_port(), free_port()) for i in range(statefulset["spec"]["replicas"])]
    try:
        for node in nodes:
            command = [nats_server_binary(), *on_loopback(container["args"], node, nodes, config, tmp_path)]
            with open(tmp_path / f"{node.name}.log", "ab") as log:
                node.proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for node in nodes:
            try:
                wait_for_port(node.client, 30, node.proc, node.name)
            except Exception as error:
                pytest.fail(f"{error}: {(tmp_path / f'{node.name}.log').read_text()[-2000:]}")
        deadline = time.monotonic() + 60
        # formed: every node follows a meta leader and knows every peer
        while not all((m := jsz(n).get("meta_cluster") or {}).get("leader") and m.get("cluster_size") == len(nodes)
                      for n in nodes):
            assert time.monotonic() < deadline, "the cluster did not form: " + (tmp_path / "nats-0.log").read_text()[-2000:]
            time.sleep(0.2)
        yield nodes, passwords, config_map(manifests, "golive-config")
    finally:
        for node in nodes:
            if node.proc is not None:
                stop_process(node.proc)


def test_the_statefulsets_nats_servers_form_a_cluster_where_a_service_creates_its_r3_streams(statefulset_on_loopback):
    from golive.shared.bus import ensure_streams
    from golive.shared.settings import Settings

    nodes, passwords, config = statefulset_on_loopback
    metas = [jsz(n)["meta_cluster"] for n in nodes]
    assert {(m["name"], m["cluster_size"]) for m in metas} == {("golive", 3)}
    [leader] = {m["leader"] for m in metas}  # the one every node follows
    assert leader in {n.name for n in nodes}
    # the coordinator, as its Deployment configures it: its user, every node, GOLIVE_STREAM_REPLICAS
    settings = Settings(nats_url=",".join(f"nats://127.0.0.1:{n.client}" for n in nodes), nats_user="coordinator",
                        nats_password=passwords["coordinator"], stream_replicas=int(config["GOLIVE_STREAM_REPLICAS"]))
    assert asyncio.run(ensure_streams(settings)) == {}
    streams = {s["name"]: s for s in jsz_streams(nodes[0])}
    for name in (settings.subjects.command_stream, settings.subjects.event_stream, settings.subjects.dead_letter_stream):
        assert streams[name]["config"]["num_replicas"] == 3


def jsz_streams(node: Node) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.http}/jsz?accounts=true&streams=true&config=true",
                                timeout=2) as answer:
        found = json.loads(answer.read())
    return [s for account in found.get("account_details", []) for s in account.get("stream_detail", [])]


# --- the NetworkPolicies --------------------------------------------------------------------------------------

def pod(manifests: list[dict], workload: str) -> Peer:
    labels = workloads(manifests)[workload]["spec"]["template"]["metadata"]["labels"]
    return Peer(workload, NAMESPACE, tuple(sorted(labels.items())))


OUTSIDE = Peer("an address outside the cluster", None)
PROMETHEUS = Peer("prometheus", "monitoring", (("app.kubernetes.io/name", "prometheus"),))
CLI = Peer("kubectl run golive", NAMESPACE, (("golive/nats-client", "true"),))
STRANGER = Peer("another pod of the namespace", NAMESPACE, (("app", "other"),))
ELSEWHERE = Peer("a pod of another namespace", "other", (("app", "other"),))


def test_the_network_policies_allow_what_golive_needs_and_deny_the_rest(manifests):
    policies = list(of_kind(manifests, "NetworkPolicy").values())
    assert any(p["spec"]["podSelector"] == {} and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
               and not p["spec"].get("ingress") and not p["spec"].get("egress") for p in policies), "no default deny"
    nats = pod(manifests, "nats")
    services = {name: pod(manifests, f"golive-{name}") for name in SERVICES}
    must = [(s, nats, 4222) for s in services.values()] + [(CLI, nats, 4222), (nats, nats, 6222)]
    must += [(PROMETHEUS, s, 9100) for s in services.values()]
    must += [(services["traffic"], OUTSIDE, 9901), (services["migrator"], OUTSIDE, 5432),
             (services["prober"], OUTSIDE, 5432), (services["prober"], OUTSIDE, 8080), (services["notifier"], OUTSIDE, 443)]
    must_not = [(STRANGER, nats, 4222), (ELSEWHERE, nats, 4222), (PROMETHEUS, nats, 4222), (STRANGER, nats, 6222)]
    must_not += [(s, nats, 6222) for s in services.values()]
    # (a pod of this namespace has no egress but the policies': a pod elsewhere tells what the services' ingress allows)
    must_not += [(p, s, 9100) for s in services.values() for p in (STRANGER, ELSEWHERE)]
    must_not += [(services["coordinator"], services["migrator"], 9100)]
    must_not += [(s, OUTSIDE, 9901) for n, s in services.items() if n != "traffic"]
    must_not += [(s, OUTSIDE, 5432) for n, s in services.items() if n not in {"migrator", "prober"}]
    must_not += [(services["coordinator"], OUTSIDE, 443), (nats, OUTSIDE, 443), (nats, OUTSIDE, 4222), (CLI, OUTSIDE, 443)]
    for source, destination, port in must:
        assert allowed(policies, NAMESPACE, source, destination, port), f"{source.name} -> {destination.name}:{port} is denied"
    for source, destination, port in must_not:
        assert not allowed(policies, NAMESPACE, source, destination, port), f"{source.name} -> {destination.name}:{port} is allowed"
    # every pod of the base resolves names
    for peer in [nats, CLI, *services.values()]:
        assert allowed(policies, NAMESPACE, peer, OUTSIDE, 53, "UDP") and allowed(policies, NAMESPACE, peer, OUTSIDE, 53, "TCP"), peer.name


def test_the_policy_evaluator_reads_selectors_as_kubernetes_does():
    """The evaluator the test above relies on, on the cases it must tell apart."""
    web = {"app": "web", "tier": "front"}
    assert selects({}, web) and selects({"matchLabels": {"app": "web"}}, web)
    assert not selects({"matchLabels": {"app": "db"}}, web)
    assert selects({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]}, web)
    assert not selects({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, web)
    assert not selects({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, web)
    deny = {"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
    a, b = Peer("a", NAMESPACE, (("app", "a"),)), Peer("b", NAMESPACE, (("app", "b"),))
    assert allowed([], NAMESPACE, a, b, 80) and not allowed([deny], NAMESPACE, a, b, 80)
    out = {"spec": {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"],
                    "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "b"}}}], "ports": [{"port": 80}]}]}}
    into = {"spec": {"podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": ["Ingress"], "ingress": [{}]}}
    assert not allowed([deny, out], NAMESPACE, a, b, 80)  # b's ingress is still denied
    assert allowed([deny, out, into], NAMESPACE, a, b, 80) and not allowed([deny, out, into], NAMESPACE, a, b, 81)
    assert not allowed([deny, out, into], NAMESPACE, b, a, 80)
    # a pod selector alone means this namespace; a namespace selector {} every namespace, but never an outside address
    other = Peer("b elsewhere", "other", (("app", "b"),))
    assert not peer_matches([{"podSelector": {"matchLabels": {"app": "b"}}}], other, NAMESPACE)
    assert peer_matches([{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "b"}}}], other, NAMESPACE)
    assert not peer_matches([{"namespaceSelector": {}}], OUTSIDE, NAMESPACE) and peer_matches(None, OUTSIDE, NAMESPACE)
