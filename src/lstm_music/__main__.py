"""`python -m lstm_music ...` (and `torchrun -m lstm_music ...`) run the CLI."""

from lstm_music.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
