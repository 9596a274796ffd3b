"""The training stage: settings and presets, batches, the trainer, resume and distributed runs.

`settings` (TrainConfig and presets), `batches` (the epoch plan: windows dealt to lanes),
`trainer` (one training run, top to bottom), `loop` (the epoch loop and time budget), `resume`
(the atomic training state), `distributed` (torchrun / DDP helpers).
"""
