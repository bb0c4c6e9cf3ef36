"""A real, small model for the tests of HTTP clients and servers: trained in milliseconds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optimizer.serve import Answer


class TfidfClassifier:
    """A real, small model: TF-IDF word + char n-grams and logistic regression."""

    model_id = "tfidf-logreg-tickets"

    def __init__(self, rows: Sequence[tuple[str, str]]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        features = make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True),
        )
        self.pipeline = make_pipeline(features, LogisticRegression(C=20.0, max_iter=2000))
        texts, labels = zip(*rows, strict=True)
        self.pipeline.fit(list(texts), list(labels))
        self.labels: list[str] = [str(c) for c in self.pipeline.classes_]

    def classify(self, messages: list[dict[str, Any]]) -> Answer:
        text = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        probabilities = self.pipeline.predict_proba([text])[0]
        best = int(probabilities.argmax())
        # Whitespace words stand in for tokens: deterministic, so tests can check usage.
        prompt_tokens = sum(len(str(m["content"]).split()) for m in messages)
        return Answer(self.labels[best], float(probabilities[best]), prompt_tokens, 1)
