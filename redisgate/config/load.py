"""Building `Settings` from its sources: defaults < TOML file < REDISGATE_* env < flags.

Every value remembers where it came from, and every problem is reported at once, naming the
setting, the value and its source (see `config` for the declarations themselves).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from redisgate.config import (
    CONFIG_ENV,
    ENV_PREFIX,
    SPECS,
    SPECS_BY_NAME,
    Settings,
    SettingSpec,
    mask_secret,
)
from redisgate.errors import ConfigError

# --- Building settings ---------------------------------------------------------------------


def _convert(spec: SettingSpec, raw: Any, from_text: bool) -> Any:
    """Turn a raw value (text from env/flags, or a TOML value) into the setting's type."""
    if from_text and isinstance(raw, str) and raw == "" and spec.optional:
        return None
    base = spec.base_type
    if base is bool:
        if isinstance(raw, bool):
            return raw
        if from_text and isinstance(raw, str):
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        raise ValueError("must be true or false")
    if base is int:
        if isinstance(raw, bool):
            raise ValueError("must be a whole number")
        if isinstance(raw, int):
            return raw
        if from_text and isinstance(raw, str):
            try:
                return int(raw.strip())
            except ValueError:
                raise ValueError("must be a whole number") from None
        raise ValueError("must be a whole number")
    if base is float:
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        if isinstance(raw, int | float):
            return float(raw)
        if from_text and isinstance(raw, str):
            try:
                return float(raw.strip())
            except ValueError:
                raise ValueError("must be a number") from None
        raise ValueError("must be a number")
    if base is Path:
        if isinstance(raw, str | Path):
            return Path(raw).expanduser()
        raise ValueError("must be a path (a string)")
    if base is str:
        if isinstance(raw, str):
            return raw
        raise ValueError("must be a string")
    raise TypeError(f"unsupported setting type {spec.type!r}")  # pragma: no cover


# REDISGATE_* variables that are not settings but are read or written elsewhere: the lines
# `redisgate dev` prints (users export them), `admin create-user`'s password, and the
# overrides scripts/install-system-deps.sh takes for its tests, and the image deploy/compose.yaml
# runs (its .env file is often exported whole).
OTHER_ENV = (
    CONFIG_ENV,
    "REDISGATE_URL",
    "REDISGATE_CONTROL_URL",
    "REDISGATE_METRICS_URL",
    "REDISGATE_REST_URL",
    "REDISGATE_REST_TOKEN",
    "REDISGATE_DEMO_LOGIN",
    "REDISGATE_ADMIN_PASSWORD",
    "REDISGATE_POLICY_RC",
    "REDISGATE_CREATECLUSTER_DIR",
    "REDISGATE_IMAGE",
)


def unknown_env_warnings(env: Mapping[str, str]) -> list[str]:
    """One line for each REDISGATE_* variable that no setting (or other use) reads, with the
    closest known name: a misspelled variable is otherwise silently ignored."""
    known = [spec.env for spec in SPECS] + list(OTHER_ENV)
    lines = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        # Compared without the prefix, which every candidate shares.
        tails = {k[len(ENV_PREFIX) :]: k for k in known}
        close = difflib.get_close_matches(name[len(ENV_PREFIX) :], list(tails), n=1)
        hint = f" (did you mean {tails[close[0]]}?)" if close else ""
        lines.append(f"warning: {name} is not a variable RedisGate reads; ignored{hint}")
    return lines


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, list(SPECS_BY_NAME), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def read_config_file(path: Path, source: str) -> dict[str, Any]:
    """Read a TOML settings file; every problem is a ConfigError naming the file."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} (from {source}) does not exist: check the path, or drop "
            f"the option to run on defaults"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"config file {path} (from {source}) is a directory, not a file"
        ) from None
    except PermissionError:
        raise ConfigError(f"config file {path} (from {source}) is not readable") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} (from {source}) is not valid TOML: {exc}") from None
    unknown = [k for k in data if k not in SPECS_BY_NAME]
    if unknown:
        lines = [f"unknown setting '{k}' in {path}{_suggest(k)}" for k in unknown]
        raise ConfigError("\n".join(lines) + "\n(`redisgate config reference` lists them all)")
    return data


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> Settings:
    """Build and validate the settings; raise ConfigError listing every bad value.

    `flags` holds only the options given on the command line (name -> text or value), and
    `flag_names` the spelling typed for each (default: the setting's flag), for messages;
    `config_file` is the `--config` option; without it `REDISGATE_CONFIG` names the file.
    """
    env = os.environ if env is None else env
    flags = flags or {}
    flag_names = flag_names or {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    errors: list[str] = []

    layers: list[tuple[str, dict[str, Any], bool]] = []
    if config_file is not None:
        file_source = "--config"
    elif env.get(CONFIG_ENV):
        config_file, file_source = Path(env[CONFIG_ENV]), f"env {CONFIG_ENV}"
    if config_file is not None:
        data = read_config_file(config_file, file_source)
        layers.append((f"file {config_file}", data, False))
    env_values = {s.name: env[s.env] for s in SPECS if s.env in env}
    layers.append(("env", env_values, True))
    layers.append(("flag", dict(flags), True))

    for layer, data, from_text in layers:
        for name, raw in data.items():
            spec = SPECS_BY_NAME[name]
            flag = flag_names.get(name, spec.flag)
            source = {"env": f"env {spec.env}", "flag": f"flag {flag}"}.get(layer, layer)
            try:
                values[name] = _convert(spec, raw, from_text)
            except ValueError as exc:
                errors.append(f"{name} = {raw!r} (from {source}): {exc}")
                continue
            sources[name] = source

    settings = Settings(**values, sources=sources)
    for spec in SPECS:
        value = getattr(settings, spec.name)
        if spec.validate is None or (value is None and spec.optional):
            continue
        problem = spec.validate(value)
        if problem:
            shown = mask_secret(value) if spec.secret else value
            where = sources.get(spec.name, "default")
            errors.append(f"{spec.name} = {shown!r} (from {where}): {problem}")
    if errors:
        raise ConfigError("invalid settings:\n  " + "\n  ".join(errors))
    return settings


def reference_markdown() -> str:
    """The configuration reference table for README.md, generated from the declarations."""
    rows = [
        "| Setting | Default | Environment variable | Flag | Meaning |",
        "|---|---|---|---|---|",
    ]
    for spec in SPECS:
        default = "(unset)" if spec.default is None else f"`{spec.default}`"
        canonical = "--" + spec.name.replace("_", "-")
        flags = f"`{spec.flag}`" + (f", `{canonical}`" if canonical != spec.flag else "")
        rows.append(f"| `{spec.name}` | {default} | `{spec.env}` | {flags} | {spec.help} |")
    return "\n".join(rows) + "\n"
