"""`golive docs asyncapi`, `golive docs envoy` and `golive docs dashboard`: write the files generated from the code (golive/docs/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from golive.cli.console import out


def asyncapi(out_path: Annotated[Path, typer.Option("--out", help="Where to write it")] = Path("docs/asyncapi.yaml")) -> None:
    """Write the AsyncAPI 3.1 document of the bus (every command, event and subject) from the code."""
    from golive.docs.asyncapi import write

    out.print(str(write(out_path)))


def envoy(out_path: Annotated[Path, typer.Option("--out", help="Where to write it")] = Path("deploy/envoy.yaml")) -> None:
    """Write the Envoy configuration docker-compose.yml mounts, from services/traffic/envoy_config.py."""
    from golive.docs.compose_envoy import write_envoy

    out.print(str(write_envoy(out_path)))


def dashboard(out_path: Annotated[Path, typer.Option("--out", help="Where to write it")] = Path("deploy/grafana/golive.json")
              ) -> None:
    """Write the Grafana dashboard of golive's metrics, from golive/docs/dashboard.py (needs the test extra:
    grafana-foundation-sdk)."""
    from golive.docs.dashboard import write_dashboard

    out.print(str(write_dashboard(out_path)))
