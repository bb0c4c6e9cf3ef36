"""Label-constrained classification with a causal LM, and one-forward classification heads.

The answer is always a valid label: decoding is restricted to a token trie of the labels (each
label's tokens followed by end-of-turn), the way serving engines do guided choice. The work is
arranged so that an item costs little more than its own tokens:

- the prompt head that every item of a call shares (system prompt, label list) is run once per
  call and its KV cache is copied into each batch;
- each batch then needs one forward: the items' own tokens (left-padded) followed by the label
  tree, the trie's tokens up to its deepest branching point laid out flat with a 4D attention
  mask, so each tree token sees the prompt and its own ancestors only (tree attention, as in
  speculative decoding's verification step);
- only the branching points go through the LM head (``logits_to_keep``), not every position.

The label distribution is the product of the renormalised allowed-token probabilities along each
label's path: exactly what constrained greedy decoding would assign.

The custom mask replaces the model's own, so a sliding-window model is scored with full attention;
that is exact while prompt and label stay inside its window (``max_prompt_tokens`` defaults to 1024).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

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


def _node(root: _Node, prefix: tuple[int, ...]) -> _Node:
    for token in prefix:
        root = root.children[token]
    return root


def _shared_length(prompts: Sequence[list[int]]) -> int:
    """Length of the token prefix all prompts share, leaving each at least one token of its own
    (its last position must be computed per item). A lone prompt shares nothing."""
    if len(prompts) < 2:
        return 0
    return min(len(os.path.commonprefix(list(prompts))), min(map(len, prompts)) - 1)


def _cache_argument(model: PreTrainedModel) -> str:
    """The forward's KV-cache argument: transformers 5.2x renamed ``past_key_values`` to ``cache``."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft hides the signature
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


@dataclass
class _SharedHead:
    """The prompt tokens every item of a call starts with, run once, and their KV cache."""

    length: int = 0
    cache: Any = None


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
        import torch

        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.labels = list(template.labels)
        self.max_prompt_tokens = max_prompt_tokens
        sequences = label_token_ids(tokenizer, self.labels)
        trie = _build_trie(sequences)
        self._prefixes = _branching_prefixes(trie)
        self._allowed = [sorted(_node(trie, p).children) for p in self._prefixes]
        # The label tree fed after the prompt: every token on the way to a non-root branching
        # point, parents before children; node i is the last token of prefix tree[i].
        self._tree = sorted({p[:d] for p in self._prefixes for d in range(1, len(p) + 1)},
                            key=lambda p: (len(p), p))
        self._tree_tokens = torch.tensor([p[-1] for p in self._tree], dtype=torch.long)
        self._tree_depths = torch.tensor([len(p) for p in self._tree], dtype=torch.long)
        self._tree_sees = torch.tensor([[p[: len(q)] == q for q in self._tree] for p in self._tree],
                                       dtype=torch.bool).reshape(len(self._tree), len(self._tree))
        self._cache_argument = _cache_argument(model)
        node = {p: i for i, p in enumerate(self._tree)}
        self._logit_nodes = [node[p] if p else -1 for p in self._prefixes]  # -1: the prompt's end
        # log P(label) = sum over its branching points of the renormalised log-prob of its token
        # there: a 0/1 matrix from (branching point, allowed token) columns to labels.
        column, offset = {}, 0
        for k, allowed in enumerate(self._allowed):
            column.update({(k, token): offset + j for j, token in enumerate(allowed)})
            offset += len(allowed)
        point = {p: k for k, p in enumerate(self._prefixes)}
        self._path_matrix = torch.zeros((offset, len(self.labels)))
        for l_index, label in enumerate(self.labels):
            tokens = sequences[label]
            for depth, token in enumerate(tokens):
                if (k := point.get(tuple(tokens[:depth]))) is not None:
                    self._path_matrix[column[(k, token)], l_index] = 1.0

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
        head = self._run_shared_head(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[Prediction | None] = [None] * len(prompts)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            probs = self.label_log_probs([prompts[i] for i in chunk], head).exp()
            _fill(results, chunk, probs, self.labels)
        return results  # type: ignore[return-value]

    def _run_shared_head(self, prompts: Sequence[list[int]]) -> _SharedHead:
        import torch

        length = _shared_length(prompts)
        if not length:
            return _SharedHead()
        ids = torch.tensor([prompts[0][:length]], device=self.model.device)
        with torch.inference_mode():
            out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
        return _SharedHead(length, getattr(out, "cache", None) or out.past_key_values)  # renamed in 5.2x

    def label_log_probs(self, prompts: Sequence[list[int]], head: _SharedHead | None = None) -> torch.Tensor:
        """(batch, labels) log-probabilities under constrained decoding, in one forward pass over
        the prompts' own tokens and the label tree (after ``head``, the shared prompt start)."""
        import copy

        import torch

        head = head or self._run_shared_head(prompts)
        device, shared = self.model.device, head.length
        tails = [p[shared:] for p in prompts]
        batch, width, nodes = len(tails), max(map(len, tails)), len(self._tree)
        ids = torch.full((batch, width + nodes), self.tokenizer.pad_token_id, dtype=torch.long)
        lengths = torch.tensor([len(tail) for tail in tails])
        for row, tail in enumerate(tails):  # left padding: every prompt ends at column width - 1
            ids[row, width - len(tail) : width] = torch.tensor(tail)
        ids[:, width:] = self._tree_tokens
        # From here on every tensor is made on the model's device: the mask is batch x queries x
        # keys, too big to build on the host and copy at GPU batch sizes.
        ids, lengths = ids.to(device), lengths.to(device)
        real = torch.arange(width, device=device) >= (width - lengths)[:, None]
        prompt_positions = shared + (real.long().cumsum(-1) - 1).clamp(min=0)
        positions = torch.cat([prompt_positions, prompt_positions[:, -1:] + self._tree_depths.to(device)], dim=1)
        keep = torch.tensor([width - 1 if n < 0 else width + n for n in self._logit_nodes], device=device)
        past = {}
        if head.cache is not None:
            cache = copy.deepcopy(head.cache)  # the forward appends to it; the head serves every batch
            cache.batch_repeat_interleave(batch)
            past = {self._cache_argument: cache}
        mask = self._attention_mask(real, shared)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False,
                                logits_to_keep=keep, **past).logits.float()
        restricted = torch.cat([logits[:, k, allowed].log_softmax(-1) for k, allowed in enumerate(self._allowed)],
                               dim=1)
        return restricted @ self._path_matrix.to(restricted.device)

    def _attention_mask(self, real: torch.Tensor, shared: int) -> torch.Tensor:
        """Additive (batch, 1, queries, keys) mask on ``real``'s device: prompt tokens see the
        shared head and their own earlier real tokens; tree tokens see the whole prompt and their
        ancestors in the tree.

        Additive in the model's dtype, made once per batch: SDPA's memory-efficient and cuDNN
        kernels take it as is for every layer, where a boolean mask would be converted to this
        form again in each layer's attention call."""
        import torch

        batch, width = real.shape
        nodes, device = len(self._tree), real.device
        sees = torch.zeros((batch, width + nodes, shared + width + nodes), dtype=torch.bool, device=device)
        sees[:, :, :shared] = True
        causal = torch.ones((width, width), dtype=torch.bool, device=device).tril()
        sees[:, :width, shared : shared + width] = causal & real[:, None, :]
        sees[:, width:, shared : shared + width] = real[:, None, :]
        sees[:, width:, shared + width :] = self._tree_sees.to(device)
        diagonal = torch.arange(width, device=device)
        sees[:, diagonal, shared + diagonal] = True  # a padding row sees itself: no empty softmax row
        dtype = self.model.get_input_embeddings().weight.dtype
        blocked = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=device)
        return torch.where(sees, torch.zeros((), dtype=dtype, device=device), blocked)[:, None]


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


def _fill(results: list, chunk: Sequence[int], probs: torch.Tensor, labels: Sequence[str]) -> None:
    """Predictions of a (batch, labels) probability tensor into ``results`` at ``chunk``'s
    positions. One device-to-host copy and plain floats: reading a tensor element by element
    cost more than a GPU's whole forward at serving batch sizes."""
    best = probs.argmax(-1).tolist()
    for i, b, row in zip(chunk, best, probs.tolist()):
        results[i] = Prediction(labels[b], row[b], dict(zip(labels, row)))


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
                probs = self.model(**enc).logits.float().softmax(-1)
            _fill(results, chunk, probs, self.labels)
        return results  # type: ignore[return-value]
