"""The tokenizer a corpus or a checkpoint was made with, rebuilt from the config it stores.

Both `Corpus.tokenizer()` and `Checkpoint.tokenizer()` come here, so a stored config is rebuilt,
and a crafted one refused, the same way wherever it was read from.
"""

from __future__ import annotations

from typing import Any

from lstm_music.errors import LstmMusicError
from lstm_music.tokens import Tokenizer, TokenizerError, tokenizer_from_config


def stored_tokenizer(config: dict[str, Any]) -> Tokenizer:
    """`tokenizer_from_config`, with a crafted config's failure said as a `TokenizerError`.

    The config is checked before anything is built (`check_tokenizer_config`); parameters that
    pass those checks and still make the tokenizer's constructor fail (a stranger's file) end
    here as one line, not a traceback."""
    try:
        return tokenizer_from_config(config)
    except LstmMusicError:  # already said for the user
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise TokenizerError(f"its tokenizer config is unusable: {error}") from error
