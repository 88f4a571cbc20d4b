"""Where a client finds its server and credential: options, environment, config file.

```
server   --server   > $RUNPLANE_SERVER  > config `server` > http://127.0.0.1:8000
token    --token    > $RUNPLANE_TOKEN   > config `token`  (only for the config's server)
```

The config file is `$RUNPLANE_CONFIG`, else `${XDG_CONFIG_HOME:-~/.config}/runplane/
config.toml`: TOML with `server = "..."` and `token = "..."`. The token in it belongs
to the server next to it: pointed at another server, the client sends no credential
rather than leak one server's token to another.

The file is written whole to a temporary file created with mode 0600 (never readable
by others, not even for a moment) and renamed over the old one, so a reader sees the
old file or the new one and never half of either. Directories it creates are 0700.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from runplane.client.client import DEFAULT_SERVER

CONFIG_ENV = "RUNPLANE_CONFIG"
SERVER_ENV = "RUNPLANE_SERVER"
TOKEN_ENV = "RUNPLANE_TOKEN"  # noqa: S105 - the name of an environment variable
TOKEN_OPTION = "--token"  # noqa: S105 - the name of an option
FILE_MODE = 0o600
DIR_MODE = 0o700
_KEYS = ("server", "token")


class ConfigError(Exception):
    """The config file cannot be read, parsed or written."""

    code = "config_error"

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class Config:
    """What the config file holds (None: not set)."""

    server: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class Resolved:
    """The server to talk to and the credential to present, with where each came from."""

    server: str
    token: str | None
    server_source: str
    token_source: str | None
    note: str | None = None  # why a configured token was not used, for error messages

    def __repr__(self) -> str:  # never show the token
        shown = "None" if self.token is None else "'***'"
        return (
            f"Resolved(server={self.server!r}, token={shown}, "
            f"server_source={self.server_source!r}, token_source={self.token_source!r})"
        )


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$RUNPLANE_CONFIG`, else `${XDG_CONFIG_HOME:-~/.config}/runplane/config.toml`."""
    env = os.environ if environ is None else environ
    explicit = env.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_CONFIG_HOME")
    # XDG: a relative XDG_CONFIG_HOME is invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "runplane" / "config.toml"


def load_config(path: Path) -> Config:
    """The config file's contents; an empty Config when there is no file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}", path=path) from exc
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}", path=path) from exc
    values: dict[str, str | None] = {}
    for key in _KEYS:
        value = doc.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"in the config file {path}, {key!r} must be a string", path=path)
        values[key] = (value or "").strip() or None
    return Config(server=values["server"], token=values["token"])


def save_config(path: Path, config: Config) -> None:
    """Replace the config file atomically with `config`; the file is created 0600."""
    lines = [
        f"{key} = {_toml_string(value)}\n"
        for key, value in (("server", config.server), ("token", config.token))
        if value is not None
    ]
    _write_private(path, "".join(lines).encode("utf-8"))


def others_can_read(path: Path) -> bool:
    """True when the file's mode lets its group or anyone else read or write it."""
    try:
        return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False


def same_server(a: str, b: str) -> bool:
    """True when two server URLs name the same server (scheme, host, port and path)."""
    try:
        ua, ub = httpx.URL(a.strip()), httpx.URL(b.strip())
    except httpx.InvalidURL:
        return a.strip().rstrip("/") == b.strip().rstrip("/")
    default_ports = {"http": 80, "https": 443}

    def key(u: httpx.URL) -> tuple[str, str, int | None, str]:
        port = u.port if u.port is not None else default_ports.get(u.scheme)
        return (u.scheme, u.host.lower(), port, u.path.rstrip("/"))

    return key(ua) == key(ub)


def resolve(
    *,
    server: str | None = None,
    token: str | None = None,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Resolved:
    """The server and token a command uses: its options, the environment, the config file.

    The config file is read only when an option or variable leaves something open.
    """
    env = os.environ if environ is None else environ
    server, token = (server or "").strip(), (token or "").strip()
    server_source = "--server"
    if not server and env.get(SERVER_ENV, "").strip():
        server, server_source = env[SERVER_ENV].strip(), SERVER_ENV
    token_source: str | None = TOKEN_OPTION
    if not token and env.get(TOKEN_ENV, "").strip():
        token, token_source = env[TOKEN_ENV].strip(), TOKEN_ENV
    note = None
    if not server or not token:
        file = path if path is not None else config_path(env)
        config = load_config(file)
        if not server and config.server:
            server, server_source = config.server, str(file)
        if not token and config.token:
            if config.server is None or same_server(config.server, server or DEFAULT_SERVER):
                token, token_source = config.token, str(file)
            else:
                note = f"the token in {file} is for {config.server}, so none was sent to {server}"
    if not server:
        server, server_source = DEFAULT_SERVER, "default"
    if not token:
        token, token_source = None, None
    return Resolved(server, token, server_source, token_source, note)


def resolve_server(
    server: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config: Config | None = None,
) -> tuple[str, str]:
    """(server, where it came from): the option, RUNPLANE_SERVER, `config`, the default."""
    env = os.environ if environ is None else environ
    if server and server.strip():
        return server.strip(), "--server"
    if env.get(SERVER_ENV, "").strip():
        return env[SERVER_ENV].strip(), SERVER_ENV
    if config is not None and config.server:
        return config.server, "config"
    return DEFAULT_SERVER, "default"


def _toml_string(value: str) -> str:
    """A TOML basic string (control characters escaped; everything else as is)."""
    out = ['"']
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _make_private_dirs(directory: Path) -> None:
    """Create `directory` and its missing parents, each with mode 0700."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, DIR_MODE)


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new 0600 file next to `path`, then rename it over `path`."""
    directory = path.parent
    try:
        _make_private_dirs(directory)
        temporary = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
        # O_EXCL|O_NOFOLLOW: a file (or link) planted at this name is never written through.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(temporary, flags, FILE_MODE)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the config file {path}: {exc.strerror}", path=path
        ) from exc
    try:
        try:
            os.fchmod(fd, FILE_MODE)  # exactly 0600, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ConfigError(
            f"cannot write the config file {path}: {exc.strerror}", path=path
        ) from exc
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
