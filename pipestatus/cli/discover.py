"""Where the configuration file is, when ``-c FILE`` does not say: the first of

1. ``$PIPESTATUS_CONFIG`` (a path; set and missing is an error, not a reason to look on),
2. ``./pipestatus.toml``,
3. the user's configuration folder: ``$XDG_CONFIG_HOME/pipestatus/pipestatus.toml`` (when
   ``XDG_CONFIG_HOME`` is an absolute path), else ``~/.config/pipestatus/pipestatus.toml``.

Pure: the environment, the working folder and the home folder are arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pipestatus.cli.config import ConfigError

__all__ = ["ENV_VAR", "FILE_NAME", "HELP", "candidates", "find_config", "user_config"]

ENV_VAR: Final = "PIPESTATUS_CONFIG"
FILE_NAME: Final = "pipestatus.toml"
#: The help text of ``-c``: where the file is looked for.
HELP: Final = (
    "the TOML configuration (default: $PIPESTATUS_CONFIG, else ./pipestatus.toml, else "
    "$XDG_CONFIG_HOME/pipestatus/pipestatus.toml or ~/.config/pipestatus/pipestatus.toml)"
)


def user_config(environ: Mapping[str, str], home: Path) -> Path:
    """The file in the user's configuration folder (XDG base directories)."""
    xdg = environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".config"
    return base / "pipestatus" / FILE_NAME


def candidates(environ: Mapping[str, str], cwd: Path, home: Path) -> list[Path]:
    """The files looked for after ``$PIPESTATUS_CONFIG``, in order."""
    return [cwd / FILE_NAME, user_config(environ, home)]


def find_config(given: str | None, environ: Mapping[str, str], cwd: Path, home: Path) -> Path:
    """``-c``'s file, else the first found (see the module docstring), else a
    :class:`ConfigError` naming every place looked at."""
    if given:
        return Path(given)
    named = environ.get(ENV_VAR, "")
    if named:
        return Path(named)
    looked = candidates(environ, cwd, home)
    for path in looked:
        if path.is_file():
            return path
    places = ", ".join(str(path) for path in looked)
    raise ConfigError(
        f"no configuration file: {ENV_VAR} is not set and there is none at {places} "
        "(write one with `pipestatus init`, or name one with -c FILE)"
    )
