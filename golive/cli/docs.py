"""`golive docs asyncapi` and `golive docs envoy`: write the files generated from the code (golive/docs/)."""

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
