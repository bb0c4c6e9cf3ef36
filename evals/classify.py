"""Label-constrained classification with a causal LM, and one-forward classification heads.

The answer is always a valid label: decoding is restricted to a token trie of the labels (each
label's tokens followed by end-of-turn), the way serving engines do guided choice. Only the
trie's branching points need logits, so:

- the prompt is run once per item (batched, left-padded) and only its last position goes
  through the LM head, not the whole sequence over the full vocabulary;
- when labels diverge later (``billing_dispute`` vs ``billing_question``), the shared prompt's
  KV cache is reused and only the short label prefixes are run, all in one batch.

The label distribution is the product of the renormalised allowed-token probabilities along each
label's path: exactly what constrained greedy decoding would assign.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from evals.data import Example


@dataclass(frozen=True)
class PromptTemplate:
    """How an item becomes chat messages.

    ``list_labels`` puts the label set in the system prompt: needed for zero/few-shot, optional
    (and costly: every label is paid for in every prompt) for a fine-tuned model.
    """

    instruction: str
    labels: tuple[str, ...]
    list_labels: bool = True

    def system_prompt(self) -> str:
        if not self.list_labels:
            return self.instruction
        return f"{self.instruction}\nAnswer with exactly one of these categories: {', '.join(self.labels)}."

    def messages(self, text: str, shots: Sequence[Example] = ()) -> list[dict[str, str]]:
        conversation = [{"role": "system", "content": self.system_prompt()}]
        for shot in shots:
            conversation += [{"role": "user", "content": shot.text},
                             {"role": "assistant", "content": shot.label}]
        return conversation + [{"role": "user", "content": text}]


@dataclass
class Prediction:
    label: str
    probability: float
    distribution: dict[str, float] = field(repr=False, default_factory=dict)


@dataclass
class _Node:
    children: dict[int, _Node] = field(default_factory=dict)
    label: str | None = None  # set on leaves


def _build_trie(sequences: dict[str, list[int]]) -> _Node:
    root = _Node()
    for label, tokens in sequences.items():
        node = root
        for token in tokens:
            node = node.children.setdefault(token, _Node())
        node.label = label
    return root


def _branching_prefixes(root: _Node) -> list[tuple[int, ...]]:
    """Token prefixes (after the prompt) at which the trie offers more than one token."""
    found, stack = [], [((), root)]
    while stack:
        prefix, node = stack.pop()
        if len(node.children) > 1:
            found.append(prefix)
        for token, child in node.children.items():
            stack.append((prefix + (token,), child))
    return sorted(found, key=lambda p: (len(p), p))


def render_prompt(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> str:
    """The chat-formatted prompt, ending where the assistant's answer starts."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def answer_suffix(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Tokens that close an assistant answer (end-of-turn), so a label is a complete answer and
    one label may be a prefix of another."""
    eos = tokenizer.eos_token_id
    return [eos] if eos is not None else []


def label_token_ids(tokenizer: PreTrainedTokenizerBase, labels: Sequence[str]) -> dict[str, list[int]]:
    suffix = answer_suffix(tokenizer)
    return {label: tokenizer(label, add_special_tokens=False)["input_ids"] + suffix for label in labels}


class LabelScorer:
    """Label-constrained classifier over a causal LM (base or with a LoRA adapter)."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        template: PromptTemplate,
        *,
        max_prompt_tokens: int = 1024,
    ):
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.labels = list(template.labels)
        self.max_prompt_tokens = max_prompt_tokens
        sequences = label_token_ids(tokenizer, self.labels)
        self._trie = _build_trie(sequences)
        self._prefixes = _branching_prefixes(self._trie)
        # For each branching prefix: the allowed next tokens, and for each label the
        # (prefix index, token) pairs on its path whose probabilities multiply into P(label).
        self._allowed = [sorted(self._node(p).children) for p in self._prefixes]
        index = {p: i for i, p in enumerate(self._prefixes)}
        self._paths = {
            label: [(index[tuple(tokens[:d])], tokens[d]) for d in range(len(tokens)) if tuple(tokens[:d]) in index]
            for label, tokens in sequences.items()
        }

    def _node(self, prefix: tuple[int, ...]) -> _Node:
        node = self._trie
        for token in prefix:
            node = node.children[token]
        return node

    def prompt_ids(self, text: str, shots: Sequence[Example] = ()) -> list[int]:
        prompt = render_prompt(self.tokenizer, self.template.messages(text, shots))
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        # Keep the end (the question and where the answer starts) when a ticket is too long.
        return ids[-self.max_prompt_tokens :]

    def predict(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 16,
        shots: Sequence[Sequence[Example]] | None = None,
    ) -> list[Prediction]:
        """Classify texts; ``shots[i]`` are the few-shot examples for text i."""
        prompts = [self.prompt_ids(text, shots[i] if shots else ()) for i, text in enumerate(texts)]
        return self.predict_ids(prompts, batch_size=batch_size)

    def predict_ids(self, prompts: Sequence[list[int]], *, batch_size: int = 16) -> list[Prediction]:
        """Classify pre-tokenised prompts, in batches of similar length (less padding)."""
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[Prediction | None] = [None] * len(prompts)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            for i, prediction in zip(chunk, self._predict_batch([prompts[i] for i in chunk])):
                results[i] = prediction
        return results  # type: ignore[return-value]

    def label_log_probs(self, prompts: Sequence[list[int]]) -> torch.Tensor:
        """(batch, labels) log-probabilities under constrained decoding."""
        import torch

        device = self.model.device
        pad = self.tokenizer.pad_token_id
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):  # left padding: every prompt ends at the last column
            ids[row, width - len(prompt) :] = torch.tensor(prompt)
            mask[row, width - len(prompt) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        deeper = len(self._prefixes) > 1 or (self._prefixes and self._prefixes[0] != ())
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                             use_cache=deeper, logits_to_keep=1)
            node_logits = {(): out.logits[:, -1, :].float()}
            if deeper:
                cache = getattr(out, "cache", None) or out.past_key_values  # renamed in transformers 5.2x
                node_logits.update(self._continue(cache, mask, positions[:, -1]))
        total = torch.zeros((len(prompts), len(self.labels)), device=device)
        for p_index, prefix in enumerate(self._prefixes):
            allowed = self._allowed[p_index]
            restricted = node_logits[prefix][:, allowed].log_softmax(-1)
            column = {token: j for j, token in enumerate(allowed)}
            for l_index, label in enumerate(self.labels):
                for step_index, token in self._paths[label]:
                    if step_index == p_index:
                        total[:, l_index] += restricted[:, column[token]]
        return total

    def _continue(self, cache, mask: torch.Tensor, last_position: torch.Tensor) -> dict:
        """Logits after each non-empty branching prefix, reusing the prompts' KV cache."""
        import torch

        prefixes = [p for p in self._prefixes if p]
        batch, k = mask.shape[0], len(prefixes)
        length = max(len(p) for p in prefixes)
        cont = torch.full((k, length), self.tokenizer.pad_token_id, dtype=torch.long)
        for row, prefix in enumerate(prefixes):  # right padding: pads come after what we read
            cont[row, : len(prefix)] = torch.tensor(prefix)
        cont = cont.to(mask.device).repeat(batch, 1)  # item-major: item0's k rows, then item1's
        cache.batch_repeat_interleave(k)
        full_mask = torch.cat([mask.repeat_interleave(k, 0), torch.ones_like(cont)], dim=1)
        positions = last_position.repeat_interleave(k)[:, None] + 1 + torch.arange(length, device=mask.device)
        with torch.inference_mode():
            logits = self.model(input_ids=cont, attention_mask=full_mask, position_ids=positions,
                                past_key_values=cache, use_cache=False).logits.float()
        logits = logits.view(batch, k, length, -1)
        return {p: logits[:, row, len(p) - 1, :] for row, p in enumerate(prefixes)}

    def _predict_batch(self, prompts: list[list[int]]) -> list[Prediction]:
        log_probs = self.label_log_probs(prompts)
        probs = log_probs.exp().cpu()
        predictions = []
        for row in probs:
            best = int(row.argmax())
            predictions.append(Prediction(self.labels[best], float(row[best]),
                                          {label: float(p) for label, p in zip(self.labels, row)}))
        return predictions


def head_inputs(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str],
                max_tokens: int):
    """The batch a classification head sees, in training and at serving alike.

    Decoder heads find the last non-pad token by pad id (either side works); encoders (BERT)
    pool the first token at absolute positions, so they need right padding. Only a head without
    a pad id reads the final column. The shared tokenizer's settings are left unchanged.
    """
    side = "left" if model.config.pad_token_id is None else "right"
    return tokenizer(list(texts), padding=True, truncation=True, padding_side=side, max_length=max_tokens,
                     return_tensors="pt").to(model.device)


class HeadClassifier:
    """A sequence-classification model: one forward pass per batch, softmax over labels."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, labels: Sequence[str],
                 *, max_tokens: int = 256):
        self.model, self.tokenizer, self.labels = model, tokenizer, list(labels)
        self.max_tokens = max_tokens

    def predict(self, texts: Sequence[str], *, batch_size: int = 32) -> list[Prediction]:
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[Prediction | None] = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            enc = head_inputs(self.model, self.tokenizer, [texts[i] for i in chunk], self.max_tokens)
            with torch.inference_mode():
                probs = self.model(**enc).logits.float().softmax(-1).cpu()
            for i, row in zip(chunk, probs):
                best = int(row.argmax())
                results[i] = Prediction(self.labels[best], float(row[best]),
                                        {label: float(p) for label, p in zip(self.labels, row)})
        return results  # type: ignore[return-value]
