"""The training stage: settings and presets, batches, the trainer, resume and distributed runs.

`settings` (TrainConfig and presets), `batches` (the epoch plan: windows dealt to lanes),
`trainer` (one training run: the model's steps, validation and saves), `loop` (the epoch loop,
time budget and the run's result), `rundir` (config.json, metrics.csv, starting a run over),
`resume` (the atomic training state), `regularise` (the model's small-data regularisers
from the settings, the averaged weights), `distributed` (torchrun / DDP helpers). The
transposition used for augmentation is a token operation: `lstm_music.tokens.transpose`.
"""
