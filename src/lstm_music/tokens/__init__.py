"""The tokens stage: MIDI reading and tokenizers by name: `seed` (the blog's), `grid`
(piano-roll steps) and MidiTok's.

`midi` (reading MIDI into clean pieces), `timing` (tempo map and tick/seconds arithmetic),
`base` (the interface), one module per tokenizer, `transpose` (token ids moved by semitones),
`instruments` (General MIDI names and the limits of the `instruments` track mode),
`controls` (MidiTok's attribute controls in the training tokens, and what a model understands).

Modules are imported only when a tokenizer is asked for, so `import lstm_music` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from lstm_music.tokens.base import Tokenizer, TokenizerError, TokenizerSettingError
from lstm_music.tokens.controls import understood_controls
from lstm_music.tokens.instruments import INSTRUMENTS_MODE

# name -> (module, class); MidiTok's are one adapter class with the MidiTok name as a parameter
_OWN = {
    "seed": ("lstm_music.tokens.seed", "SeedTokenizer"),
    "grid": ("lstm_music.tokens.grid", "GridTokenizer"),
}
# MidiTok tokenizers that write one flat token stream (CPWord/Octuple write compound tokens)
MIDITOK_NAMES = ("remi", "tsd", "midilike", "structured")
TOKENIZER_NAMES = ("remi", "seed", "grid") + tuple(n for n in MIDITOK_NAMES if n != "remi")
DEFAULT_TOKENIZER = "remi"

__all__ = [
    "DEFAULT_TOKENIZER",
    "TOKENIZER_NAMES",
    "Tokenizer",
    "TokenizerError",
    "check_instruments",
    "check_tokenizer_config",
    "get_tokenizer",
    "keeps_instruments",
    "tokenizer_class",
    "tokenizer_for_tracks",
    "tokenizer_from_config",
    "understood_controls",
]


def tokenizer_class(name: str) -> type[Tokenizer]:
    """The class behind a tokenizer name, for its class-level facts (`timed`, `has_pitch`)."""
    key = name.lower()
    if key in _OWN:
        module, cls = _OWN[key]
        return getattr(import_module(module), cls)
    if key in MIDITOK_NAMES:
        from lstm_music.tokens.miditok_adapter import MidiTokTokenizer

        return MidiTokTokenizer
    known = ", ".join(TOKENIZER_NAMES)
    raise TokenizerError(f"unknown tokenizer {name!r}; choose one of: {known}")


def get_tokenizer(name: str, **params: Any) -> Tokenizer:
    """A tokenizer by its user-facing name, e.g. `get_tokenizer("grid", step=0.25)`."""
    cls = tokenizer_class(name)
    if name.lower() in MIDITOK_NAMES:
        return cls(**{**params, "kind": name.lower()})
    return cls(**params)


def tokenizer_for_tracks(
    name: str, tracks: str, controls: list[str] | None = None, **params: Any
) -> Tokenizer:
    """The tokenizer `prepare` makes for a tokenizer name, a track mode and controls.

    Mode "instruments" needs tokens that say each note's instrument: MidiTok's, with Program
    tokens in one stream (`miditok_adapter.instruments_config`, recorded whole in the tokenizer
    config). Controls (`tokens.controls`, names such as "density") need MidiTok's REMI; they
    set the config's attribute-control settings and the tokenizer's `controls` parameter.
    Without either, `get_tokenizer(name, **params)` unchanged (so are its configs)."""
    if tracks == INSTRUMENTS_MODE:
        check_instruments(name)
        from lstm_music.tokens.miditok_adapter import instruments_config

        params = {**params, "config": instruments_config()}
    if controls:
        check_controls(name)
        from lstm_music.tokens.controls import controls_params
        from lstm_music.tokens.miditok_adapter import controls_config

        config = controls_config(params.get("config"), list(controls))
        params = {**params, "config": config, "controls": controls_params(controls)}
    return get_tokenizer(name, **params)


def check_controls(name: str) -> None:
    """A setting error unless tokenizer `name` can carry attribute controls."""
    tokenizer_class(name)  # a known name
    if name.lower() not in MIDITOK_NAMES:
        raise TokenizerSettingError(f"controls need MidiTok's remi tokenizer, not {name!r}",
                                    "controls")  # fmt: skip
    from lstm_music.tokens.miditok_adapter import check_controls_kind

    check_controls_kind(name.lower())


def check_instruments(name: str) -> None:
    """A setting error unless tokenizer `name` can keep instruments (track mode instruments)."""
    tokenizer_class(name)  # a known name
    if name.lower() not in MIDITOK_NAMES:
        choices = ", ".join(MIDITOK_NAMES)
        raise TokenizerSettingError(
            f"tracks {INSTRUMENTS_MODE} needs a tokenizer with instrument tokens ({choices}), "
            f"not {name!r}",
            "tracks",
        )


def keeps_instruments(tokenizer: Tokenizer) -> bool:
    """Whether the tokenizer's pieces keep their instruments (one MIDI track each, drums too)."""
    return bool(getattr(tokenizer, "keeps_instruments", False))


_PARAMS = {"seed": (), "grid": ("step",)}  # what each tokenizer's __init__ takes
_MIDITOK_PARAMS = ("kind", "config", "controls")


def check_tokenizer_config(config: Any) -> None:
    """A `TokenizerError` unless `config` is a tokenizer config whose parameters are in range.

    Cheap (nothing is built, MidiTok is not imported): checkpoint and corpus headers come from
    strangers, and a crafted MidiTok config could make building the tokenizer take gigabytes."""
    if not isinstance(config, dict) or not isinstance(config.get("tokenizer"), str):
        raise TokenizerError("not a tokenizer config (no tokenizer name)")
    name, params = config["tokenizer"].lower(), config.get("params", {})
    tokenizer_class(name)  # a known name
    version = config.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise TokenizerError(f"tokenizer {name!r} config has no version number: {version!r}")
    allowed = _MIDITOK_PARAMS if name in MIDITOK_NAMES else _PARAMS[name]
    if not isinstance(params, dict) or set(params) - set(allowed):
        shown = sorted(set(params) - set(allowed)) if isinstance(params, dict) else params
        raise TokenizerError(f"tokenizer {name!r} takes parameters {list(allowed)}, not {shown!r}")
    if name == "grid" and "step" in params:
        from lstm_music.tokens.grid import check_step, parse_grid_step

        step = params["step"]
        parse_grid_step(step) if isinstance(step, str) else check_step(step)
    elif name in MIDITOK_NAMES:
        from lstm_music.tokens.miditok_adapter import check_config

        if params.get("kind", name) != name:
            raise TokenizerError(f"tokenizer {name!r} config names kind {params['kind']!r}")
        check_config(params.get("config"))
        if params.get("controls") is not None:
            from lstm_music.tokens.controls import check_controls as check_control_params

            check_control_params(params["controls"])


def tokenizer_from_config(config: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from `Tokenizer.to_config()` (stored in corpora and checkpoints)."""
    check_tokenizer_config(config)
    name, version, params = config["tokenizer"], config["version"], config.get("params", {})
    tokenizer = get_tokenizer(name, **params)
    if version != tokenizer.version:
        raise TokenizerError(
            f"tokenizer {name!r} config is version {version}, this lstm-music has version "
            f"{tokenizer.version}: re-run `lstm-music prepare`"
        )
    return tokenizer
