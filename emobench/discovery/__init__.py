"""Discovery on the SEV train split: what an artifact-backed controller loads.

`directions` (emotion directions of the residual stream) and `circuit` (neurons and heads)."""
