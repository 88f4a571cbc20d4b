"""A process folder, whichever kind: runplane.toml, or a Robocorp robot's robot.yaml."""

from __future__ import annotations

from runplane.dependencies import Reader
from runplane.domain.errors import InvalidBundle, InvalidManifest
from runplane.manifest import MANIFEST_FILE, ProcessSpec, parse_manifest
from runplane.robot import ROBOT_FILE, parse_robot


def read_folder(read: Reader, name: str | None = None, task: str | None = None) -> ProcessSpec:
    """The spec of a process folder: its runplane.toml, else its robot.yaml (a Robocorp
    robot run as process `name`, task `task`); InvalidManifest names every problem."""
    text = read(MANIFEST_FILE)
    if text is not None:
        return parse_manifest(text, read)
    robot = read(ROBOT_FILE)
    if robot is None:
        raise InvalidBundle(
            f"bundle has no {MANIFEST_FILE} (or a Robocorp robot's {ROBOT_FILE}) at its root"
        )
    if name is None:
        raise InvalidManifest("Name the process that runs this robot.")
    return parse_robot(robot, read, name, task)
