"""The fine-tuned heads (`minilm-ft`, `mpnet-ft`): an encoder's top layers trained with a linear
head.

- `bases`: the encoders a head is built on (MiniLM, mpnet) and where their offline weights live;
- `data`: the training examples (judged SEV replies, every GoEmotions comment with a soft label,
  degraded and unnamed copies, written implicit replies) and the folds they are cross-validated on;
- `model`: the encoder split into a frozen bottom and a trained top, and the shipped artifact;
- `train`: the training loop, the cross-validation that chooses the number of epochs, and the
  held-out report;
- `head`: the build of a shipped head with its thresholds and training card
  (`emobench train-classifier --head ft [--base mpnet]`);
- `oof`: a head's out-of-fold probabilities, kept beside it (`--oof-only` recomputes them);
- `pair`: `ft-pair`'s card, thresholds for the mean of two heads chosen on their out-of-fold
  probabilities (`emobench train-classifier --head pair`).
"""
