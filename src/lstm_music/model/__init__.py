"""The model stage: the LSTM network, checkpoints (one header reader) and shipped models.

`lstm` (the network), `header` (the one reader of a checkpoint file's header: safetensors framing
and our schema, checked before anything is allocated), `shipped` (the registry of models in
`weights/` and resolving a name, file or run folder to a checkpoint file), `checkpoint` (loading
whatever `shipped` resolves, writing checkpoints, and whether a corpus fits one), `runs` (the run
folder `train` writes: its files' names, reading its config and metrics, a summary per run).
"""
