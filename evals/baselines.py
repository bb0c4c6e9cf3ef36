"""The baseline ladder: what a fine-tuned adapter has to beat, each priced per item.

- ``classical``: TF-IDF word + char n-grams, logistic regression;
- ``embedding``: mean-pooled MiniLM sentence embeddings, logistic regression;
- ``zero-shot``: the base LLM with the label list in the prompt, label-constrained;
- ``few-shot``: the same plus k training examples (random, or nearest neighbours by embedding);
- ``hosted``: an OpenAI-compatible chat-completions endpoint (see ``evals.hosted``).

Every baseline is scored by ``evals.metrics.score`` on the same items and metered by
``evals.meter`` at the serving batch size, so the comparison is like for like.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from evals.classify import LabelScorer, PromptTemplate
from evals.cost import Economics, Figure, Provenance
from evals.data import Example
from evals.hosted import HostedSpec, run_hosted
from evals.meter import Throughput, metered
from evals.metrics import Scores, score
from evals.models import DEFAULT_ENCODER, DEFAULT_LLM, load_causal_lm, load_encoder, load_tokenizer

BaselineName = Literal["classical", "embedding", "zero-shot", "few-shot", "hosted"]


class FewShotSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: list[int] = Field([4], min_length=1, description="Examples per prompt; one baseline per k.")
    selection: Literal["random", "nearest"] = Field(
        "nearest", description="random, or nearest neighbours of the ticket by embedding (RAG-style).")


class BaselinesSpec(BaseModel):
    """Which baselines run, and with what."""

    model_config = ConfigDict(extra="forbid")
    run: list[BaselineName] = Field(["classical", "embedding", "zero-shot", "few-shot"],
                                    description="Baselines to run, in order.")
    llm: str = Field(DEFAULT_LLM, description="Base LLM for zero-/few-shot (bundled name, HF id or path).")
    encoder: str = Field(DEFAULT_ENCODER, description="Encoder for the embedding baseline and retrieval.")
    few_shot: FewShotSpec = Field(default_factory=FewShotSpec, description="Few-shot settings.")
    max_llm_items: int | None = Field(
        None, gt=0, description="Score LLM baselines on at most this many test items (stratified).")
    batch_size: int = Field(16, ge=1, description="Serving batch size for metering.")
    hosted: HostedSpec | None = Field(None, description="The hosted API to compare against.")


@dataclass
class BaselineResult:
    name: str
    scores: Scores | None  # None: not measured (hosted estimate without a user accuracy)
    predictions: list[str | None]
    items: list[Example]  # the items scored (a subset of test for LLM baselines when capped)
    cost_per_item: Figure
    items_per_second: float | None
    tokens_per_item: float | None = None
    details: dict = field(default_factory=dict)


Progress = Callable[[int], None]


def _result(name: str, items: list[Example], predictions: list[str | None], labels: list[str],
            throughput: Throughput | None, cost: Figure, tokens: float | None = None, **details) -> BaselineResult:
    return BaselineResult(
        name=name,
        scores=score([e.label for e in items], predictions, labels),
        predictions=predictions,
        items=items,
        cost_per_item=cost,
        items_per_second=throughput.items_per_second if throughput else None,
        tokens_per_item=tokens,
        details=details,
    )


def classical(train: list[Example], test: list[Example], labels: list[str], hardware: Figure,
              *, batch_size: int, progress: Progress | None = None) -> BaselineResult:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
    )
    model = make_pipeline(features, LogisticRegression(C=10, max_iter=2000))
    model.fit([e.text for e in train], [e.label for e in train])
    predictions, throughput = metered(lambda batch: list(model.predict([e.text for e in batch])), test,
                                      batch_size=batch_size, device="cpu (scikit-learn)", progress=progress)
    return _result("classical", test, predictions, labels, throughput, throughput.cost_per_item(hardware))


def embed(encoder, tokenizer, texts: Sequence[str], *, batch_size: int = 64):
    """Mean-pooled, L2-normalised sentence embeddings (numpy, one row per text)."""
    import torch

    rows = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start : start + batch_size]), padding=True, truncation=True,
                        max_length=256, return_tensors="pt").to(encoder.device)
        with torch.inference_mode():
            hidden = encoder(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        rows.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu())
    return torch.cat(rows).numpy()


def embedding(train: list[Example], test: list[Example], labels: list[str], hardware: Figure,
              *, encoder_name: str, batch_size: int, progress: Progress | None = None) -> BaselineResult:
    from sklearn.linear_model import LogisticRegression

    encoder, tokenizer = load_encoder(encoder_name), load_tokenizer(encoder_name)
    classifier = LogisticRegression(C=10, max_iter=2000)
    classifier.fit(embed(encoder, tokenizer, [e.text for e in train]), [e.label for e in train])

    def predict(batch: Sequence[Example]) -> list[str]:
        return list(classifier.predict(embed(encoder, tokenizer, [e.text for e in batch], batch_size=batch_size)))

    predictions, throughput = metered(predict, test, batch_size=batch_size, progress=progress)
    return _result("embedding", test, predictions, labels, throughput, throughput.cost_per_item(hardware))


class ShotPicker:
    """Chooses few-shot examples from train: at random (seeded) or nearest by embedding."""

    def __init__(self, train: list[Example], selection: str, *, encoder_name: str, seed: int = 0):
        self.train, self.selection, self.rng = train, selection, random.Random(seed)
        if selection == "nearest":
            self.encoder, self.tokenizer = load_encoder(encoder_name), load_tokenizer(encoder_name)
            self.matrix = embed(self.encoder, self.tokenizer, [e.text for e in train])

    def pick(self, texts: Sequence[str], k: int) -> list[list[Example]]:
        if self.selection == "random":
            return [self.rng.sample(self.train, k) for _ in texts]
        similarity = embed(self.encoder, self.tokenizer, list(texts)) @ self.matrix.T
        # Nearest last: the most similar example sits right before the question.
        return [[self.train[j] for j in row.argsort()[-k:]] for row in similarity]


def llm_baseline(name: str, scorer: LabelScorer, test: list[Example], labels: list[str], hardware: Figure,
                 *, batch_size: int, shots: list[list[Example]] | None = None,
                 progress: Progress | None = None) -> BaselineResult:
    """Zero-/few-shot: label-constrained scoring; cost grows with the prompt's tokens."""
    prompts = [scorer.prompt_ids(e.text, shots[i] if shots else ()) for i, e in enumerate(test)]
    order = sorted(range(len(test)), key=lambda i: len(prompts[i]))  # less padding per batch
    ranked, throughput = metered(lambda batch: scorer.predict_ids(batch, batch_size=batch_size),
                                 [prompts[i] for i in order], batch_size=batch_size, progress=progress)
    predictions: list[str | None] = [None] * len(test)
    for position, i in enumerate(order):
        predictions[i] = ranked[position].label
    tokens = sum(len(p) for p in prompts) / len(prompts)
    return _result(name, test, predictions, labels, throughput, throughput.cost_per_item(hardware), tokens)


def hosted(spec: HostedSpec, template: PromptTemplate, test: list[Example], labels: list[str],
           *, cache_dir: Path, count_tokens: Callable[[str], int] | None,
           progress: Progress | None = None) -> BaselineResult:
    conversations = [template.messages(e.text) for e in test]
    reported = 0

    def advance(done: int) -> None:  # run_hosted reports a running total, the ladder steps
        nonlocal reported
        if progress:
            progress(done - reported)
        reported = done

    result = run_hosted(spec, conversations, [e.label for e in test], cache_dir=cache_dir,
                        count_tokens=count_tokens, progress=advance, label_set=labels)
    provenance = Provenance.measured if result.provenance == "measured" else Provenance.estimated
    cost = Figure(result.cost_per_item or 0.0, provenance, f"usage x price ({result.price_source})")
    tokens = (result.prompt_tokens + result.completion_tokens) / max(result.answered or len(test), 1)
    details = {"invalid": result.invalid, "dollars_spent": result.dollars_spent,
               "stopped_reason": result.stopped_reason, "price_source": result.price_source}
    name = f"hosted:{spec.model}"
    if spec.mode == "estimate":
        return BaselineResult(name=name, scores=None, predictions=result.predictions, items=test,
                              cost_per_item=cost, items_per_second=None, tokens_per_item=tokens,
                              details={**details, "assumed_accuracy": spec.assumed_accuracy})
    answered = [i for i, reply in enumerate(result.raw_replies) if reply is not None]
    items = [test[i] for i in answered]
    predictions = [result.predictions[i] for i in answered]
    throughput = Throughput(result.items_per_second, spec.concurrency, len(items), "hosted API") \
        if result.items_per_second else None
    return _result(name, items, predictions, labels, throughput, cost, tokens, **details)


def cap_items(test: list[Example], cap: int | None, seed: int = 0) -> list[Example]:
    """A stratified subset of at most ``cap`` items (LLM baselines are slow on CPU)."""
    if cap is None or len(test) <= cap:
        return test
    from evals.data import stratified_split

    return stratified_split(test, [cap / len(test)], seed)[1]


def run_ladder(spec: BaselinesSpec, train: list[Example], test: list[Example], labels: list[str],
               instruction: str, economics: Economics, *, cache_dir: Path, seed: int = 0,
               only: Sequence[str] | None = None, skip: Sequence[str] = (),
               on_start: Callable[[str, int], Progress] | None = None) -> list[BaselineResult]:
    """Run the configured baselines in order; ``on_start(name, total)`` returns a progress hook.

    Baselines named in ``skip`` (already measured) are not run again."""
    hardware = economics.hardware_price()
    names = [n for n in spec.run if not only or n in only]
    if only:
        unknown = sorted(set(only) - set(spec.run) - {"hosted"} - set(BaselineName.__args__))
        if unknown:
            raise ValueError(f"unknown baseline(s) {', '.join(unknown)}: choose from {', '.join(BaselineName.__args__)}")
        names = [n for n in BaselineName.__args__ if n in only]
    start = on_start or (lambda name, total: None)
    template = PromptTemplate(instruction, tuple(labels), list_labels=True)
    llm_items = cap_items(test, spec.max_llm_items, seed)
    results: list[BaselineResult] = []
    scorer = None
    for name in names:
        if name in skip:
            continue
        if name == "classical":
            results.append(classical(train, test, labels, hardware, batch_size=spec.batch_size,
                                     progress=start(name, len(test))))
        elif name == "embedding":
            results.append(embedding(train, test, labels, hardware, encoder_name=spec.encoder,
                                     batch_size=spec.batch_size, progress=start(name, len(test))))
        elif name in ("zero-shot", "few-shot"):
            if name == "few-shot" and all(f"few-shot-k{k}-{spec.few_shot.selection}" in skip for k in spec.few_shot.k):
                continue
            if scorer is None:
                scorer = LabelScorer(load_causal_lm(spec.llm), load_tokenizer(spec.llm), template)
            if name == "zero-shot":
                results.append(llm_baseline("zero-shot", scorer, llm_items, labels, hardware,
                                            batch_size=spec.batch_size, progress=start(name, len(llm_items))))
                continue
            picker = ShotPicker(train, spec.few_shot.selection, encoder_name=spec.encoder, seed=seed)
            for k in spec.few_shot.k:
                label = f"few-shot-k{k}-{spec.few_shot.selection}"
                if label in skip:
                    continue
                shots = picker.pick([e.text for e in llm_items], k)
                results.append(llm_baseline(label, scorer, llm_items, labels, hardware, shots=shots,
                                            batch_size=max(1, spec.batch_size // 2),
                                            progress=start(label, len(llm_items))))
        elif name == "hosted":
            if spec.hosted is None:
                raise ValueError("baselines.hosted is not configured (base_url, model, api_key_env)")
            if f"hosted:{spec.hosted.model}" in skip:
                continue
            tokenizer = load_tokenizer(spec.llm)
            results.append(hosted(spec.hosted, template, test, labels, cache_dir=cache_dir,
                                  count_tokens=lambda text: len(tokenizer(text)["input_ids"]),
                                  progress=start(name, len(test))))
    return results
