"""`runplane deploy FOLDER`: check the manifest locally, upload the bundle, deploy it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from runplane.cli.inputs import InputOption, input_arguments
from runplane.cli.output import emit_json, err, out
from runplane.cli.session import JsonOption, ServerOption, connect
from runplane.domain.errors import InvalidBundle, InvalidManifest

if TYPE_CHECKING:
    from runplane.manifest import ProcessSpec

MANIFEST_FILE = "runplane.toml"


def deploy(
    folder: Annotated[
        Path,
        typer.Argument(
            metavar="FOLDER",
            exists=True,
            file_okay=False,
            dir_okay=True,
            help="Process folder with a runplane.toml.",
        ),
    ],
    environment: Annotated[
        str, typer.Option("--environment", "-e", help="Environment to deploy to.")
    ] = "production",
    inputs: InputOption = None,
    not_invokable: Annotated[
        bool,
        typer.Option("--not-invokable", help="Deploy, but refuse starts over the API."),
    ] = False,
    concurrency_limit: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="At most N executions of it running at once."),
    ] = None,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Publish FOLDER as a new process version and deploy it to an environment.

    --input values become the deployment's default input arguments.
    """
    with connect(server, json_mode=json_output) as client:
        spec = read_spec(folder)
        types = {name: p.type.value for name, p in spec.parameters.items()}
        arguments = input_arguments(inputs or [], types)
        version, new = client.upload_version(spec.name, pack(folder))
        if not json_output:
            stored = "uploaded" if new else "already stored (same content)"
            out.print(Text.assemble((spec.name, "bold"), f" version {version['version']} {stored}"))
        deployment, _ = client.deploy(
            spec.name,
            environment,
            version=version["version"],
            input_arguments=arguments,
            invokable=not not_invokable,
            concurrency_limit=concurrency_limit,
        )
    if json_output:
        emit_json({"version": version, "deployment": deployment})
        return
    limit = deployment.get("concurrencyLimit")
    out.print(
        Text.assemble(
            "Deployed to ",
            (deployment["environment"], "bold"),
            "; " if deployment["invokable"] else "; not invokable; ",
            "no concurrency limit" if limit is None else f"at most {limit} at once",
        )
    )
    if deployment["invokable"]:
        err.print(f"Start it with: runplane run {spec.name} --wait", style="dim")


def read_spec(folder: Path) -> ProcessSpec:
    """Parse FOLDER/runplane.toml; InvalidManifest names every problem."""
    from runplane.manifest import parse_manifest

    path = folder / MANIFEST_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidManifest(f"{folder} has no {MANIFEST_FILE}: not a process folder.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidManifest(f"Cannot read {path}: {exc}") from exc

    def read(name: str) -> str | None:
        other = folder / name
        if not other.is_file():
            return None
        try:
            return other.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidManifest(f"Cannot read {other}: {exc}") from exc

    return parse_manifest(text, read)


def pack(folder: Path) -> bytes:
    """The folder as a deterministic zip bundle."""
    from runplane.bundle import BundleError, pack_folder

    try:
        return pack_folder(folder)
    except (BundleError, OSError) as exc:
        raise InvalidBundle(str(exc)) from exc
