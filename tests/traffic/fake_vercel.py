"""A local HTTP server implementing the parts of Vercel's REST API golive uses, as documented
(vercel.com/docs/rest-api: rolling-release, rollback, promote, deployments, projects), with its error format
``{"error": {"code", "message"}}``. It is a contract stand-in: we cannot run Vercel, so the vercel provider is
tested against the documented behaviour, including the errors (401 without the right bearer token, 404 for an
unknown project, 409, 429 with Retry-After, 5xx). ``fail_next`` queues faults for the next requests.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    code: str = "internal_server_error"


@dataclass
class Project:
    id: str
    name: str
    deployments: list[str]  # production deployments, oldest first
    production: str
    stages: list[int] = field(default_factory=lambda: [10, 50, 100])
    release: dict[str, Any] | None = None


class FakeVercel:
    def __init__(self, token: str) -> None:
        self.token = token
        self.projects: dict[str, Project] = {}
        self.fail_next: list[Fault] = []
        self.requests: list[tuple[float, str, str]] = []  # (monotonic time, method, path)
        self.auth_headers: list[str] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_project(self, project: Project) -> Project:
        self.projects[project.id] = self.projects[project.name] = project
        return project

    def start(self) -> FakeVercel:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                with fake.lock:
                    status, headers, payload = fake.handle(self.command, self.path, self.headers.get("Authorization"), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json", "Content-Length": str(len(data))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- the API ----------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, auth: str | None, body: dict) -> tuple[int, dict, Any]:
        parts = urlsplit(raw_path)
        path, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.requests.append((time.monotonic(), method, path))
        self.auth_headers.append(auth or "")
        if self.fail_next:
            fault = self.fail_next.pop(0)
            return fault.status, fault.headers, _error(fault.code, f"injected {fault.status}")
        if auth != f"Bearer {self.token}":
            return 401, {}, _error("forbidden", "Not authorized")
        routes = [
            ("GET", r"/v6/deployments", self.list_deployments),
            ("GET", r"/v9/projects/(?P<p>[^/]+)", self.get_project),
            ("GET", r"/v1/projects/(?P<p>[^/]+)/rolling-release", self.get_release),
            ("POST", r"/v1/projects/(?P<p>[^/]+)/rolling-release/start", self.start_release),
            ("POST", r"/v1/projects/(?P<p>[^/]+)/rolling-release/approve-stage", self.approve_stage),
            ("POST", r"/v1/projects/(?P<p>[^/]+)/rolling-release/complete", self.complete),
            ("POST", r"/v9/projects/(?P<p>[^/]+)/rollback/(?P<d>[^/]+)", self.rollback),
            ("POST", r"/v10/projects/(?P<p>[^/]+)/promote/(?P<d>[^/]+)", self.promote),
        ]
        for verb, pattern, handler in routes:
            found = re.fullmatch(pattern, path)
            if verb == method and found:
                args = found.groupdict()
                if "p" in args:
                    project = self.projects.get(args.pop("p"))
                    if project is None:
                        return 404, {}, _error("not_found", "Project not found")
                    args["project"] = project
                return handler(query=query, body=body, **args)
        return 404, {}, _error("not_found", f"no route {method} {path}")

    def list_deployments(self, query: dict, body: dict) -> tuple[int, dict, Any]:
        project = self.projects.get(query.get("projectId", ""))
        if project is None:
            return 404, {}, _error("not_found", "Project not found")
        limit = int(query.get("limit", 20))
        listed = [{"uid": d, "target": "production", "state": "READY"} for d in reversed(project.deployments)][:limit]
        return 200, {}, {"deployments": listed, "pagination": {"count": len(listed)}}

    def get_project(self, project: Project, query: dict, body: dict) -> tuple[int, dict, Any]:
        return 200, {}, {"id": project.id, "name": project.name, "targets": {"production": {"id": project.production}}}

    def get_release(self, project: Project, query: dict, body: dict) -> tuple[int, dict, Any]:
        return 200, {}, {"rollingRelease": project.release}

    def start_release(self, project: Project, query: dict, body: dict) -> tuple[int, dict, Any]:
        canary = body.get("canaryDeploymentId")
        if canary not in project.deployments:
            return 404, {}, _error("not_found", "Deployment not found")
        release = project.release
        if release and release["state"] == "ACTIVE":
            if release["canaryDeployment"]["id"] == canary:
                return 200, {}, {"rollingRelease": release}  # documented: same canary, no side effect
            return 409, {}, _error("conflict", "A rolling release is already active")
        stages = [{"index": i, "targetPercentage": p, "isFinalStage": i == len(project.stages) - 1,
                   "requireApproval": True, "duration": None} for i, p in enumerate(project.stages)]
        project.release = {"state": "ACTIVE", "currentDeployment": {"id": project.production},
                           "canaryDeployment": {"id": canary}, "advancementType": "manual-approval",
                           "stages": stages, "activeStage": stages[0], "nextStage": stages[1] if len(stages) > 1 else None}
        return 200, {}, {"rollingRelease": project.release}

    def approve_stage(self, project: Project, query: dict, body: dict) -> tuple[int, dict, Any]:
        release = project.release
        if not release or release["state"] != "ACTIVE" or release["canaryDeployment"]["id"] != body.get("canaryDeploymentId"):
            return 400, {}, _error("bad_request", "No active rolling release for this canary")
        index = int(body.get("nextStageIndex", -1))
        if not release["activeStage"]["index"] < index < len(release["stages"]) - 1:
            return 400, {}, _error("bad_request", "Invalid nextStageIndex")
        release["activeStage"] = release["stages"][index]
        release["nextStage"] = release["stages"][index + 1]
        return 200, {}, {"rollingRelease": release}

    def complete(self, project: Project, query: dict, body: dict) -> tuple[int, dict, Any]:
        release = project.release
        if not release or release["state"] != "ACTIVE" or release["canaryDeployment"]["id"] != body.get("canaryDeploymentId"):
            return 400, {}, _error("bad_request", "No active rolling release for this canary")
        release.update(state="COMPLETE", activeStage=release["stages"][-1], nextStage=None)
        project.production = body["canaryDeploymentId"]
        return 200, {}, {"rollingRelease": release}

    def rollback(self, project: Project, d: str, query: dict, body: dict) -> tuple[int, dict, Any]:
        if d not in project.deployments:
            return 404, {}, _error("not_found", "Deployment not found")
        if project.release and project.release["state"] == "ACTIVE":
            project.release["state"] = "ABORTED"  # the CLI's abort is this instant rollback
        project.production = d
        return 201, {}, {}

    def promote(self, project: Project, d: str, query: dict, body: dict) -> tuple[int, dict, Any]:
        if d not in project.deployments:
            return 404, {}, _error("not_found", "Deployment not found")
        project.production = d
        return 201, {}, {}


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}
