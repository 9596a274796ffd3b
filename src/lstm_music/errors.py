"""The one exception family users see: the CLI prints its message in one line, no traceback."""


class LstmMusicError(Exception):
    """An error whose message is written for the user (bad input, bad file, bad option)."""
