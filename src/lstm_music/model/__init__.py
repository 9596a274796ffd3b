"""The model stage: the LSTM network, checkpoints (one header reader) and shipped models.

`lstm` (the network), `checkpoint` (reading and writing checkpoints, checked before anything is
allocated), `shipped` (the registry of models in `weights/` and resolving a name, file or run
folder to a checkpoint).
"""
