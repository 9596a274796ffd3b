"""The corpus stage: MIDI files found, read in isolated workers and tokenized into a corpus on disk.

`prepare` (the command's library side), `discover` (finding files, splits), `workers` (the
isolated process pool), `store` (the on-disk `Corpus`: token ids + manifest), `builtin` and
`builtin_convert` (public-domain collections from music21), `pianoroll` (the .mat benchmarks).
"""
