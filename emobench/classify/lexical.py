"""Word uni- and bigram TF-IDF over a fixed vocabulary: the lexical half of the `minilm` features.

Sentence embeddings alone miss explicit emotion words in short human text; the words alone miss
paraphrase. Fitting uses scikit-learn's TfidfVectorizer; applying needs only the vocabulary and
the idf weights, which ship with the head (sublinear tf, idf, L2-normalised rows, as sklearn).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

NGRAMS = (1, 2)


class Lexical:
    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray) -> None:
        from sklearn.feature_extraction.text import CountVectorizer

        if len(vocabulary) != len(idf):
            raise ValueError(f"{len(vocabulary)} vocabulary entries but {len(idf)} idf weights")
        self.vocabulary = list(vocabulary)
        self.idf = np.asarray(idf, dtype=np.float32)
        self._counts = CountVectorizer(vocabulary=self.vocabulary, ngram_range=NGRAMS)

    @classmethod
    def fit(cls, texts: Sequence[str], min_df: int = 2) -> Lexical:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(ngram_range=NGRAMS, min_df=min_df, sublinear_tf=True).fit(texts)
        order = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
        return cls(order, vec.idf_)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        x = self._counts.transform(texts).astype(np.float32).tocsr()
        x.data = 1.0 + np.log(x.data)
        x = x @ sp.diags(self.idf)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ x)


def combine(embeddings: np.ndarray, lexical: sp.csr_matrix | None) -> sp.csr_matrix | np.ndarray:
    """[embedding | tf-idf] feature rows (embeddings alone when there is no lexical part)."""
    if lexical is None:
        return embeddings
    return sp.hstack([sp.csr_matrix(embeddings), lexical]).tocsr()
