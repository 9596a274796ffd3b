"""The evaluation stage: held-out likelihood, copies of the training pieces, musical statistics.

`likelihood` (NLL per token or step, the key mixture), `compare` (copy detection), `verdict`
(the yardstick's warnings and the one-line verdict), `statistics` (the Yang and Lerch
statistics and their overlaps).
"""
