"""Optional ``autotosis.toml``: defaults per command and per task; flags override it.

    [defaults]            # any command's long options, without the dashes
    fps = 2
    [task.rage]           # applied when the command works on task "rage"
    threshold = 0.7
    crop = "0.7833,0.1296,0.9682,0.3694"

Keys are option names (``min-length`` or ``min_length``).  The file is looked up in the
current folder unless ``--config`` names one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from autotosis.core.errors import ConfigError

CONFIG_NAME = "autotosis.toml"


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    defaults: dict[str, object] = field(default_factory=dict)
    tasks: dict[str, dict[str, object]] = field(default_factory=dict)

    def values_for(self, task: str | None) -> dict[str, object]:
        """Option values for a command on ``task``: task section over defaults."""
        merged = dict(self.defaults)
        if task and task in self.tasks:
            merged.update(self.tasks[task])
        return merged


def _normalise(table: dict, path: Path, section: str) -> dict[str, object]:
    values = {}
    for key, value in table.items():
        if isinstance(value, dict):
            raise ConfigError(
                f"{path}: [{section}] {key}: nested tables are not options", hint="use [defaults] or [task.NAME]"
            )
        values[key.replace("-", "_")] = value
    return values


def load_config(path: Path | None = None, *, cwd: Path | None = None) -> Config:
    """Read ``path`` (must exist) or ``./autotosis.toml`` (optional)."""
    if path is None:
        candidate = (cwd or Path.cwd()) / CONFIG_NAME
        if not candidate.exists():
            return Config()
        path = candidate
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - {"defaults", "task"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown section [{sorted(unknown)[0]}]", hint="known sections: [defaults], [task.NAME]"
        )
    tasks_table = data.get("task", {})
    if not isinstance(tasks_table, dict):
        raise ConfigError(f"{path}: 'task' must be a table like [task.rage]")
    tasks = {}
    for name, table in tasks_table.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: task.{name} must be a table like [task.{name}]")
        tasks[name] = _normalise(table, path, f"task.{name}")
    return Config(path=path, defaults=_normalise(data.get("defaults", {}), path, "defaults"), tasks=tasks)
