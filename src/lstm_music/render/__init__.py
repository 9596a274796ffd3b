"""The render stage: MIDI to audio (FluidSynth or the built-in synth) and pictures.

`audio` (WAV rendering, the SoundFont search), `pianoroll` (the piano-roll PNG), `synth` (the
NumPy synth), `plots` (the shared plot style: loss curves, statistics).
"""
