"""The one exception family users see: the CLI prints its message in one line, no traceback."""

from __future__ import annotations


class LstmMusicError(Exception):
    """An error whose message is written for the user (bad input, bad file, bad option)."""


class SettingError(LstmMusicError, ValueError):
    """A bad value for one setting, said in the library's terms.

    `setting` is the name of the settings field (`max_notes`, `temperature`): the library never
    names a command-line flag, so the CLI, which knows its flags, adds the one that sets it."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting
