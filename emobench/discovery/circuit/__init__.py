"""`emobench discover circuit`: the reference study's emotion circuit, for any decoder model.

Rooms, in the order the recipe uses them (METHOD.md, "Local components" and controller 3):

- `capture`: one pass over the SEV train split's prompting prompts, reading the residual after
  attention and after each block, the o_proj input and the down_proj input at the last token;
- `components`: difference vectors (grouped by skeleton *and* valence), neuron and head scores,
  sigma and the reference direction;
- `importance`: how far each sublayer moves the final hidden state along the emotion (probed on
  neutral prompts, one-token passes over a KV cache);
- `budget`: the budgeted integration (floors, proportional shares, cap);
- `build`: `discover_circuit`, which runs it all and writes the artifact the `circuit`
  controller loads.
"""

from emobench.discovery.circuit.budget import Budget, allocate
from emobench.discovery.circuit.build import COMMAND, KIND, discover_circuit

__all__ = ["COMMAND", "KIND", "Budget", "allocate", "discover_circuit"]
