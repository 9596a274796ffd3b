"""The generation stage: sampling options, the stepper, primers, `generate`, files, the demo.

`sampling` (SamplingOptions: temperature, top-k, top-p, greedy, seed, length, with their
defaults in one place), `generate` (the sampling loop), `stepper` (one fast step per token),
`primers` (a user's MIDI or a corpus window to start from), `pipeline` (pieces to MIDI, WAV and
PNG files: the one path the CLI, the demo and the web page share), `demo`.
"""
