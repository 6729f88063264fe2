"""`emobench discover attributes`: neurons that carry human attributes of emotion concepts.

Rooms: `concepts` (the human ratings and dissimilarities of 27 emotion concepts), `rsa` (per-neuron
dissimilarities, Spearman correlation with each attribute, Mantel test, FDR), `build` (reading the
model's neurons at concept words and writing the artifact the `ablate` controller reads).
"""

from emobench.discovery.attributes.build import COMMAND, KIND, counts_table, discover_attributes

__all__ = ["COMMAND", "KIND", "counts_table", "discover_attributes"]
