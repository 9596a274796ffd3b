"""The corpus stage: MIDI files found, read in isolated workers and tokenized into a corpus on disk.

`prepare` (the command's library side), `prepare_report` (its result and split warnings),
`discover` (finding files, splits), `workers` (the isolated process pool), `store` (the on-disk
`Corpus`: token ids + manifest), `builtin_registry`, `builtin` and `builtin_convert`
(public-domain collections from music21: the registry, the cache, the conversion),
`pianoroll` (the .mat benchmarks).
"""
