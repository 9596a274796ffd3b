"""Configuration as dataclasses, built from a TOML file and command-line flags.

Precedence: dataclass defaults < the TOML file's table < flags given on the command line.
The resolved dataclass is what gets saved next to every result.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, TypeVar

from lstm_music.errors import LstmMusicError, SettingError
from lstm_music.fsutil import require_regular_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

T = TypeVar("T")


def load_toml(path: str | Path, table: str | None = None) -> dict[str, Any]:
    """The TOML file as a dict; its `[table]` when given and present, else the top level."""
    try:
        require_regular_file(path, f"config {path}")  # a named pipe would block forever
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as error:
        raise LstmMusicError(f"cannot read config {path}: {error.strerror or error}") from error
    except tomllib.TOMLDecodeError as error:
        raise LstmMusicError(f"config {path} is not valid TOML: {error}") from error
    if table and isinstance(data.get(table), dict):
        return data[table]
    return data


def build_config(cls: type[T], *layers: dict[str, Any] | None) -> T:
    """`cls(**merged layers)`, later layers winning; None values mean "not given"."""
    names = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            key = key.replace("-", "_")
            if key not in names:
                known = ", ".join(sorted(names))
                raise LstmMusicError(f"unknown setting {key!r} for {cls.__name__}; known: {known}")
            if value is not None:
                merged[key] = value
    try:
        return cls(**merged)
    except LstmMusicError:
        raise  # already said for the user (a `SettingError` keeps the setting it names)
    except (TypeError, ValueError) as error:
        raise LstmMusicError(str(error)) from error


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass as JSON-able dict (tuples become lists, paths strings)."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return {key: plain(value) for key, value in dataclasses.asdict(config).items()}


@dataclasses.dataclass(frozen=True)
class Bound:
    """The values a numeric setting may take: `low`..`high` (`low` itself excluded when
    `above`), integers only when `integer`. One per setting, kept with its settings object, so
    the CLI, the web API and the library refuse a value alike."""

    low: float
    high: float
    integer: bool = False
    above: bool = False  # `low` itself is refused (temperature above 0)

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        low_ok = value > self.low if self.above else value >= self.low
        return bool(low_ok and value <= self.high)  # nan fails both comparisons

    def text(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        low = f"above {self.low:g}" if self.above else f"from {self.low:g}"
        return f"{kind} {low} to {self.high:g}"


def shown(value: Any) -> str:
    """A value for a one-line message: a number of thousands of digits is not printed whole."""
    if isinstance(value, int) and value.bit_length() > 80:  # str() refuses past 4,300 digits
        return f"a number of about {int(value.bit_length() * 0.30103):,} digits"
    text = f"{value:g}" if isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else f"{text[:16]}... ({len(text):,} characters)"


def check_bounds(settings: Any, bounds: dict[str, Bound]) -> None:
    """Refuse the first field of `settings` outside its `Bound` (None means "not given")."""
    for name, bound in bounds.items():
        value = getattr(settings, name)
        if value is not None and not bound.accepts(value):
            raise SettingError(f"{name} must be {bound.text()}, not {shown(value)}", name)
