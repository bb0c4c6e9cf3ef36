"""Build a predictor from a base model + trained adapter, for test scoring, export and serving.

``AdapterSpec`` is everything needed to predict (it is what an exported bundle's
``roitune.json`` holds), so the sweep, ``roitune predict`` and ``roitune serve`` load adapters
through the same code and give the same answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from evals.classify import HeadClassifier, LabelScorer, PromptTemplate
from evals.models import load_causal_lm, load_sequence_classifier, load_tokenizer


@dataclass(frozen=True)
class AdapterSpec:
    base_model: str
    head: str  # "generative" or "classifier"
    labels: tuple[str, ...]
    instruction: str
    list_labels: bool
    max_tokens: int
    quantization: str | None = None  # "nf4" for QLoRA adapters
    full: bool = False  # full fine-tuning: the folder holds the whole model, not an adapter

    def template(self) -> PromptTemplate:
        return PromptTemplate(self.instruction, self.labels, list_labels=self.list_labels)

    def to_json(self) -> dict:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_json(cls, data: dict) -> AdapterSpec:
        return cls(**{**data, "labels": tuple(data["labels"])})


def load_predictor(spec: AdapterSpec, adapter_dir: str | Path, *, merge: bool = False):
    """A LabelScorer or HeadClassifier over the base model with the adapter applied (or over
the fully fine-tuned model itself)."""
    from peft import PeftModel

    tokenizer = load_tokenizer(spec.base_model)
    weights = str(adapter_dir) if spec.full else spec.base_model
    if spec.head == "classifier":
        model = load_sequence_classifier(weights, list(spec.labels))
    else:
        model = load_causal_lm(weights, quantization=spec.quantization)
    if not spec.full:
        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
        if merge:
            model = model.merge_and_unload()
    model.eval()
    if spec.head == "classifier":
        return HeadClassifier(model, tokenizer, spec.labels, max_tokens=spec.max_tokens)
    return LabelScorer(model, tokenizer, spec.template(), max_prompt_tokens=spec.max_tokens)
