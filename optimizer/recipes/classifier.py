"""A sequence-classification head: one forward pass per item at serving time.

Works on decoder LMs (Llama's ``score`` over the last token) and on BERT-like encoders
(``classifier`` over the pooled first token). The head is new: it starts at zero, so the first
steps begin exactly at chance (loss ln(number of labels)) instead of at a random confident
guess (or, when the trial's ``head_init`` is ``probe``, at a linear probe of the frozen base:
``optimizer.recipes.probe``), and it learns at its own, higher learning rate while the body
(LoRA adapters, or every weight in full fine-tuning) moves slowly. With one shared rate,
measured on the demo tickets, MiniLM either underfit (2e-3: 68% validation) or never left
chance level (4e-3).

The input is the ticket text alone (the head needs no instruction or label list, which keeps
items short), encoded by ``evals.classify.head_inputs`` exactly as at serving time.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Sequence

from optimizer.recipes.common import Job, Trained
from optimizer.recipes.loop import Schedule, TrainStats, train
from optimizer.recipes.probe import output_layer_name, probe_head


def run(job: Job, tokenizer) -> Trained:
    """Load the base with a new head over ``job.labels``, set up its weights, train, return."""
    import torch

    from evals.accelerator import training_batch_size
    from evals.classify import HeadClassifier
    from evals.models import load_sequence_classifier

    s = job.settings
    torch.manual_seed(job.seed)
    base = load_sequence_classifier(s.base_model, list(job.labels),
                                    quantization="nf4" if s.method == "qlora" else None,
                                    double_quant=s.double_quant, compute_dtype=s.torch_compute_dtype())
    index = {label: i for i, label in enumerate(job.labels)}
    texts, label_ids = [e.text for e in job.train], [index[e.label] for e in job.train]
    zero_head(base)
    probed = s.head_init == "probe" and output_layer_name(base) is not None
    start = (probe_head(base, tokenizer, texts, label_ids, max_tokens=job.search.max_seq_tokens) if probed
             else {"head_init": "zero"})
    model = job.prepared(base, "SEQ_CLS")
    predictor = HeadClassifier(model, tokenizer, job.labels, max_tokens=job.search.max_seq_tokens)
    batch = training_batch_size(model, job.search.max_seq_tokens, s.batch_size)  # CUDA: what memory allows
    per_epoch = -(-len(job.train) // batch)
    schedule = job.schedule()
    if probed:
        # LP-FT: a head that already classifies trains at the body's rate, which keeps its start;
        # at its own 2e-3 on Banking77 the loss rose from 0.55 to 1.18 over the first epoch
        schedule = replace(schedule, head_learning_rate=None, chance_loss=math.log(len(job.labels)))
        start["head_learning_rate"] = "the body's"
    stats = train_classifier(model, tokenizer, texts, label_ids,
                             batch_size=batch, seed=job.seed, max_tokens=job.search.max_seq_tokens,
                             schedule=schedule, on_eval=job.checker(predictor) if job.checker else None,
                             on_step=job.step_hook("classifier", per_epoch * schedule.epochs))
    return Trained(model, predictor, stats, start)


def zero_head(model) -> None:
    """Start the new head's output layer at zero (every label equally likely)."""
    import torch

    name = output_layer_name(model)
    if name is None:
        return
    with torch.no_grad():
        for param in getattr(model, name).parameters():
            param.zero_()


def train_classifier(
    model,
    tokenizer,
    texts: Sequence[str],
    label_ids: Sequence[int],
    *,
    batch_size: int,
    seed: int,
    max_tokens: int,
    schedule: Schedule,
    on_eval: Callable[[int], float] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainStats:
    import torch

    from evals.classify import head_inputs
    from optimizer.recipes.answers import length_buckets

    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_tokens)["input_ids"]]

    def batches(epoch: int):
        return length_buckets(len(texts), lengths, batch_size, generator)

    def loss_of(indices):
        enc = head_inputs(model, tokenizer, [texts[i] for i in indices], max_tokens)
        logits = model(**enc).logits.float()
        target = torch.tensor([label_ids[i] for i in indices], device=device)
        return torch.nn.functional.cross_entropy(logits, target), int(enc["attention_mask"].sum())

    return train(model, batches, loss_of, schedule, on_eval=on_eval, on_step=on_step)
