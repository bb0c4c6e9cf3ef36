"""Start a new classification head from a linear probe of the frozen base (LP-FT).

Fine-tuning from a zero head first spends its steps teaching the head while the head's
useless gradients push the body's features around; fitting the head on the frozen features
first (Kumar et al., 2022, "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution") lets fine-tuning start from a working classifier. On Banking77 the
bundled MiniLM's frozen features scored about 90% on validation (measured once, outside bench/)
under a probe of the head's own input (its pooled first token), while its full fine-tune from a
zero head stopped at about 92% (BENCHMARKS.md compares both starts: the probe helped one
known-good start and hurt the other, so it is opt-in).

The probe reads exactly what the head reads: the output layer is swapped for an identity for
one pass over the training rows, so the model's own pooling (BERT's pooler over the first token,
a decoder's last non-pad token) produces the features. A multinomial logistic regression on
standardised features is folded back into the layer's weights (and bias, where it has one).
"""

from __future__ import annotations

import time
from typing import Sequence

# L2 strength of the probe (scikit-learn's C) on standardised features: on Banking77's MiniLM
# features (measured once, outside bench/) it scored 90.3% validation at 0.1, against 89.4% at 1
# and 89.0% at 10; a stronger penalty also keeps the starting head from being confidently wrong
# on a small training set.
PROBE_C = 0.1


def output_layer_name(model) -> str | None:
    """The name of the new head's output layer (Llama's ``score``, BERT's ``classifier``), if it
    is a plain linear layer; None for heads of another shape (RoBERTa's two-layer head), which
    keep the initialisation transformers gave them."""
    import torch

    for name in ("score", "classifier"):
        if isinstance(getattr(model, name, None), torch.nn.Linear):
            return name
    return None


def pooled_features(model, tokenizer, texts: Sequence[str], *, max_tokens: int, batch_size: int = 32):
    """The (rows, hidden) float32 features the head's output layer sees for ``texts``."""
    import torch

    from evals.classify import head_inputs

    name = output_layer_name(model)
    if name is None:
        raise ValueError("the model's head has no plain linear output layer to probe")
    layer, was_training = getattr(model, name), model.training
    setattr(model, name, torch.nn.Identity())
    model.eval()
    try:
        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                enc = head_inputs(model, tokenizer, list(texts[start:start + batch_size]), max_tokens)
                rows.append(model(**enc).logits.float().cpu())
    finally:
        setattr(model, name, layer)
        model.train(was_training)
    return torch.cat(rows)


def fit_probe(features, label_ids: Sequence[int], n_labels: int, *, bias: bool):
    """A multinomial logistic regression on standardised ``features`` (rows, hidden), folded into
    raw-feature terms: ``(weight (n_labels, hidden), bias (n_labels,) or None, train accuracy)``."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    features = np.asarray(features, dtype=np.float64)
    # a layer without a bias (Llama's score) cannot absorb a shift: only scale its features
    mean = features.mean(0) if bias else np.zeros(features.shape[1])
    scale = features.std(0) + 1e-6
    z = (features - mean) / scale
    fit = LogisticRegression(C=PROBE_C, max_iter=1000, fit_intercept=bias).fit(z, np.asarray(label_ids))
    coef, intercept = fit.coef_, np.broadcast_to(fit.intercept_, len(fit.coef_))
    if len(fit.classes_) == 2:  # scikit-learn keeps one row (class 1 against class 0): split it
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = np.zeros((n_labels, features.shape[1]))
    weight[fit.classes_] = coef / scale  # a label with no training row keeps a zero row
    offset = None
    if bias:
        offset = np.full(n_labels, intercept.min() - 10.0)  # a label with no training row: never chosen
        offset[fit.classes_] = intercept - weight[fit.classes_] @ mean
    return weight, offset, float(fit.score(z, label_ids))


def probe_head(model, tokenizer, texts: Sequence[str], label_ids: Sequence[int], *, max_tokens: int) -> dict:
    """Set the head's output layer to a logistic regression fitted on the frozen features of the
    training rows; returns what the probe did, for the trial record."""
    import torch

    began = time.perf_counter()
    features = pooled_features(model, tokenizer, texts, max_tokens=max_tokens)
    layer = getattr(model, output_layer_name(model))
    weight, bias, accuracy = fit_probe(features.numpy(), label_ids, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=layer.weight.dtype))
        if bias is not None:
            layer.bias.copy_(torch.as_tensor(bias, dtype=layer.bias.dtype))
    return {"head_init": "probe", "probe_train_accuracy": round(accuracy, 4),
            "probe_seconds": round(time.perf_counter() - began, 3)}
