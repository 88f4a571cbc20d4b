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
ROBOT_FILE = "robot.yaml"


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
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="A Robocorp robot's process name (default: the folder's name).",
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task", help="The robot.yaml task the process runs (needed when there are several)."
        ),
    ] = None,
    server: ServerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Publish FOLDER as a new process version and deploy it to an environment.

    FOLDER has a runplane.toml, or is a Robocorp robot (robot.yaml): then the
    process is named by --name (or the folder) and runs --task (or the only task).
    --input values become the deployment's default input arguments.
    """
    with connect(server, json_mode=json_output) as client:
        spec = read_spec(folder, name, task)
        types = {pname: p.type.value for pname, p in spec.parameters.items()}
        arguments = input_arguments(inputs or [], types)
        robot_task = spec.robot["task"] if spec.robot else None
        version, new = client.upload_version(spec.name, pack(folder), robot_task)
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


def read_spec(folder: Path, name: str | None = None, task: str | None = None) -> ProcessSpec:
    """Read FOLDER's runplane.toml (or robot.yaml); InvalidManifest names every problem."""
    from runplane.folder import read_folder

    if not (folder / MANIFEST_FILE).is_file() and not (folder / ROBOT_FILE).is_file():
        raise InvalidManifest(
            f"{folder} has no {MANIFEST_FILE} (nor a Robocorp robot's {ROBOT_FILE}): "
            "not a process folder."
        )

    def read(rel: str) -> str | None:
        path = folder / rel
        if not path.is_file():
            return None
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidManifest(f"Cannot read {path}: {exc}") from exc

    return read_folder(read, name or folder.resolve().name, task)


def pack(folder: Path) -> bytes:
    """The folder as a deterministic zip bundle."""
    from runplane.bundle import BundleError, pack_folder

    try:
        return pack_folder(folder)
    except (BundleError, OSError) as exc:
        raise InvalidBundle(str(exc)) from exc
