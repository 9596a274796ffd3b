"""The generation stage: sampling options, the stepper, primers, `generate`, and the demo.

`generate` (GenerateOptions and the sampling loop), `stepper` (one fast step per token),
`primers` (a user's MIDI or a corpus window to start from), `demo` (pieces straight to files).
"""
