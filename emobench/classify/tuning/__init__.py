"""The fine-tuned MiniLM head (`minilm-ft`): the encoder's top layers trained with a linear head.

- `data`: the training examples (judged SEV replies, every GoEmotions comment with a soft label,
  degraded and unnamed copies) and the folds they are cross-validated on;
- `model`: the encoder split into a frozen bottom and a trained top, and the shipped artifact;
- `train`: the training loop, the cross-validation that chooses the number of epochs, the match
  thresholds and the training card (`emobench train-classifier --head ft`).
"""
