"""The baseline ladder: what a fine-tuned adapter has to beat, each priced per item.

- ``classical``: TF-IDF word + char n-grams, logistic regression;
- ``embedding``: mean-pooled MiniLM sentence embeddings, logistic regression;
- ``zero-shot``: the base LLM with the label list in the prompt, label-constrained;
- ``few-shot``: the same plus k training examples (random, or nearest neighbours by embedding);
- ``hosted``: an OpenAI-compatible chat-completions endpoint (see ``evals.hosted``).

Every baseline is scored by ``evals.metrics.score`` on the validation split (where the verdict is
decided) and the test split (reported), and metered by ``evals.meter`` at the serving batch size,
so the comparison with the sweep's trials is like for like. Each becomes a ``CandidateRecord``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from evals.classify import LabelScorer, Prediction, PromptTemplate
from evals.cost import Economics, Figure, Provenance
from evals.data import Example, HeldOut, Splits, held_out
from evals.hosted import HostedSpec, run_hosted
from evals.meter import metered
from evals.metrics import score
from evals.record import CandidateRecord, Cap, Kind, SplitResult
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


Progress = Callable[[int], None]
Predict = Callable[[Sequence[Example]], list[Prediction]]  # a batch of examples -> label distributions


@dataclass(frozen=True)
class Pricing:
    """What a self-served baseline is priced with: the hardware's $/hour and its name."""

    rate: Figure
    hardware: str


def _scored(name: str, method: str, predict: Predict, held: Sequence[HeldOut], labels: list[str], pricing: Pricing,
            *, batch_size: int, began: float, seed: int, on_start: Callable[[str, int], Progress | None],
            tokens: Callable[[HeldOut], float] | None = None, settings: dict | None = None) -> CandidateRecord:
    """Score ``predict`` on every held-out split; meter it on the first (the decision split)."""
    results, throughput = {}, None
    for part in held:
        progress = on_start(f"{name} ({part.split})", len(part.items))
        if throughput is None:
            answers, throughput = metered(predict, part.items, batch_size=batch_size, progress=progress)
        else:
            answers = _in_batches(predict, part.items, batch_size, progress)
        predictions = [a.label for a in answers]
        scores = score([e.label for e in part.items], predictions, labels, seed=seed)
        results[part.split] = SplitResult.of(scores, predictions, labels, part.index,
                                             [a.distribution for a in answers])
    cost = throughput.cost_per_item(pricing.rate, pricing.hardware)
    seconds = time.perf_counter() - began
    return CandidateRecord(
        kind=Kind.baseline, name=name, method=method, settings=settings or {},
        validation=results.get("validation"), test=results.get("test"),
        cost_per_item=cost.value, cost_provenance=cost.provenance.value, cost_source=cost.source,
        items_per_second=throughput.items_per_second, measured_on=throughput.machine.description,
        measured_hardware=throughput.machine.hardware, meter=throughput.stats,
        tokens_per_item=tokens(held[0]) if tokens else None,
        compute_seconds=round(seconds, 3), compute_dollars=seconds * pricing.rate.value / 3600,
        caps=tuple(c for c in (part.cap() for part in held) if c is not None))


def _in_batches(predict: Predict, items: Sequence[Example], batch_size: int,
                progress: Progress | None) -> list[Prediction]:
    out = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        out.extend(predict(batch))
        if progress:
            progress(len(batch))
    return out


def classical_model():
    """The classical baseline's model, unfitted: TF-IDF word + char n-grams, logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
    )
    return make_pipeline(features, LogisticRegression(C=10, max_iter=2000))


def classical(train: list[Example], held: Sequence[HeldOut], labels: list[str], pricing: Pricing, *,
              batch_size: int, seed: int, on_start) -> CandidateRecord:
    began = time.perf_counter()
    model = classical_model()
    model.fit([e.text for e in train], [e.label for e in train])
    return _scored("classical", "classical", lambda batch: _distributions(model, [e.text for e in batch]), held,
                   labels, pricing, batch_size=batch_size, began=began, seed=seed, on_start=on_start)


def _distributions(model, inputs) -> list[Prediction]:
    """A scikit-learn classifier's label probabilities (``predict_proba``) as predictions."""
    rows = model.predict_proba(inputs)
    out = []
    for row in rows:
        best = int(row.argmax())
        out.append(Prediction(str(model.classes_[best]), float(row[best]),
                              {str(label): float(p) for label, p in zip(model.classes_, row)}))
    return out


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


def embedding(train: list[Example], held: Sequence[HeldOut], labels: list[str], pricing: Pricing, *,
              encoder_name: str, batch_size: int, seed: int, on_start) -> CandidateRecord:
    from sklearn.linear_model import LogisticRegression

    began = time.perf_counter()
    encoder, tokenizer = load_encoder(encoder_name), load_tokenizer(encoder_name)
    classifier = LogisticRegression(C=10, max_iter=2000)
    classifier.fit(embed(encoder, tokenizer, [e.text for e in train]), [e.label for e in train])

    def predict(batch: Sequence[Example]) -> list[Prediction]:
        return _distributions(classifier, embed(encoder, tokenizer, [e.text for e in batch], batch_size=batch_size))

    return _scored("embedding", "embedding", predict, held, labels, pricing, batch_size=batch_size, began=began,
                   seed=seed, on_start=on_start, settings={"encoder": encoder_name})


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


def llm_baseline(name: str, scorer: LabelScorer, held: Sequence[HeldOut], labels: list[str], pricing: Pricing, *,
                 batch_size: int, seed: int, on_start, shots: Callable[[Sequence[Example]], list[list[Example]]] | None = None,
                 settings: dict | None = None) -> CandidateRecord:
    """Zero-/few-shot: label-constrained scoring; cost grows with the prompt's tokens."""
    began = time.perf_counter()
    prompts: dict[int, list[int]] = {}
    for part in held:
        chosen = shots(part.items) if shots else [()] * len(part.items)
        prompts.update({id(e): scorer.prompt_ids(e.text, s) for e, s in zip(part.items, chosen)})
    ordered = [part.sorted_by(lambda e: len(prompts[id(e)])) for part in held]

    def predict(batch: Sequence[Example]) -> list[Prediction]:
        return scorer.predict_ids([prompts[id(e)] for e in batch], batch_size=len(batch))

    def tokens(part: HeldOut) -> float:
        return sum(len(prompts[id(e)]) for e in part.items) / max(len(part.items), 1)

    return _scored(name, name.split("-k")[0], predict, ordered, labels, pricing, batch_size=batch_size, began=began,
                   seed=seed, on_start=on_start, tokens=tokens, settings=settings)


def hosted(spec: HostedSpec, template: PromptTemplate, held: Sequence[HeldOut], labels: list[str], *,
           cache_dir: Path, count_tokens: Callable[[str], int] | None, seed: int, on_start) -> CandidateRecord:
    """The hosted API on every held-out split in one run (one spend cap, one cache)."""
    began = time.perf_counter()
    items = [e for part in held for e in part.items]
    progress = on_start(f"hosted:{spec.model}", len(items))
    reported = 0

    def advance(done: int) -> None:  # run_hosted reports a running total, the ladder steps
        nonlocal reported
        if progress:
            progress(done - reported)
        reported = done

    result = run_hosted(spec, [template.messages(e.text) for e in items], [e.label for e in items],
                        cache_dir=cache_dir, count_tokens=count_tokens, progress=advance, label_set=labels)
    provenance = Provenance.measured if result.provenance == "measured" else Provenance.estimated
    tokens = (result.prompt_tokens + result.completion_tokens) / max(result.answered or len(items), 1)
    details = {"invalid": result.invalid, "dollars_spent": result.dollars_spent,
               "stopped_reason": result.stopped_reason, "price_source": result.price_source,
               "assumed_accuracy": spec.assumed_accuracy}
    common = dict(kind=Kind.baseline, name=f"hosted:{spec.model}", method="hosted", hosted=True,
                  settings={"model": spec.model, "base_url": spec.base_url or "", "mode": spec.mode},
                  cost_per_item=result.cost_per_item or 0.0, cost_provenance=provenance.value,
                  cost_source=f"usage x price ({result.price_source})", tokens_per_item=tokens,
                  items_per_second=result.items_per_second, measured_on="hosted API",
                  compute_seconds=round(time.perf_counter() - began, 3), compute_dollars=result.dollars_spent,
                  details=details)
    if spec.mode == "estimate":
        return CandidateRecord(**common, fail_reason="estimate only: accuracy unknown")
    results, caps, start = {}, [], 0
    for part in held:
        positions = range(start, start + len(part.items))
        start += len(part.items)
        answered = [i for i in positions if result.raw_replies[i] is not None]
        index = part.index if part.index is not None else list(range(len(part.items)))
        predictions = [result.predictions[i] for i in answered]
        scores = score([items[i].label for i in answered], predictions, labels, seed=seed)
        results[part.split] = SplitResult.of(scores, predictions, labels,
                                             [index[i - positions.start] for i in answered]) if answered else None
        if len(answered) < part.available:
            caps.append(Cap(f"{part.split} items", len(answered), part.available))
    return CandidateRecord(**common, validation=results["validation"], test=results["test"], caps=tuple(caps))


def run_ladder(spec: BaselinesSpec, splits: Splits, instruction: str, economics: Economics, *, cache_dir: Path,
               seed: int = 0, only: Sequence[str] | None = None, skip: Sequence[str] = (),
               on_start: Callable[[str, int], Progress | None] | None = None) -> list[CandidateRecord]:
    """Run the configured baselines in order, each scored on validation and test.

    ``on_start(name, total)`` returns a progress hook. Baselines named in ``skip`` (already in
    the study) are not run again."""
    names = [n for n in spec.run if not only or n in only]
    if only:
        unknown = sorted(set(only) - set(spec.run) - {"hosted"} - set(BaselineName.__args__))
        if unknown:
            raise ValueError(f"unknown baseline(s) {', '.join(unknown)}: choose from {', '.join(BaselineName.__args__)}")
        names = [n for n in BaselineName.__args__ if n in only]
    start = on_start or (lambda name, total: None)
    pricing = Pricing(economics.hardware_price(), economics.hardware)
    labels, train = splits.labels, splits.train
    everything = held_out(splits, None, seed)
    llm_items = held_out(splits, spec.max_llm_items, seed)
    template = PromptTemplate(instruction, tuple(labels), list_labels=True)
    common = dict(seed=seed, on_start=start)
    results: list[CandidateRecord] = []
    scorer = None
    for name in names:
        if name in skip:
            continue
        if name == "classical":
            results.append(classical(train, everything, labels, pricing, batch_size=spec.batch_size, **common))
        elif name == "embedding":
            results.append(embedding(train, everything, labels, pricing, encoder_name=spec.encoder,
                                     batch_size=spec.batch_size, **common))
        elif name in ("zero-shot", "few-shot"):
            labels_k = [f"few-shot-k{k}-{spec.few_shot.selection}" for k in spec.few_shot.k]
            if name == "few-shot" and all(label in skip for label in labels_k):
                continue
            if scorer is None:
                scorer = LabelScorer(load_causal_lm(spec.llm), load_tokenizer(spec.llm), template)
            if name == "zero-shot":
                results.append(llm_baseline("zero-shot", scorer, llm_items, labels, pricing,
                                            batch_size=spec.batch_size, settings={"llm": spec.llm}, **common))
                continue
            picker = ShotPicker(train, spec.few_shot.selection, encoder_name=spec.encoder, seed=seed)
            for k, label in zip(spec.few_shot.k, labels_k):
                if label in skip:
                    continue
                results.append(llm_baseline(
                    label, scorer, llm_items, labels, pricing, batch_size=max(1, spec.batch_size // 2),
                    shots=lambda items, k=k: picker.pick([e.text for e in items], k),
                    settings={"llm": spec.llm, "k": k, "selection": spec.few_shot.selection}, **common))
        elif name == "hosted":
            if spec.hosted is None:
                raise ValueError("baselines.hosted is not configured (base_url, model, api_key_env)")
            if f"hosted:{spec.hosted.model}" in skip:
                continue
            tokenizer = load_tokenizer(spec.llm)
            results.append(hosted(spec.hosted, template, everything, labels, cache_dir=cache_dir,
                                  count_tokens=lambda text: len(tokenizer(text)["input_ids"]), **common))
    return results
