#!/usr/bin/env python3
"""GPU fast path: the product's training and classification code against the plain
transformers + PEFT loop (../shared/anchors/plain_peft_baseline.py), in one run, each arm at its
own best batch and with ``torch.compile`` tried for both.

Random-initialised models of real shapes (throughput and memory do not depend on the weights'
values), bf16, SDPA. Sections:

  train     LoRA r16 all-linear, 64-token rows. plain: ``m(input_ids=x, labels=x)`` (full
            vocabulary at every position) and AdamW, as the anchor. project: the sweep's own
            ``optimizer.recipes.sft.train_sft`` (58-token prompt + 6-token answer, answer-only
            logits and loss, the shared loop's clipping and NaN check). Both arms run at every
            batch of ``TRAIN_BATCHES`` that fits (an OOM ends that arm's list); the project arm
            also at the batch ``evals.accelerator.training_batch_size`` picks from free memory.
            Then each arm again at its own best batch with its blocks compiled
            (``evals.accelerator.compile_blocks``); compile time is reported apart.
  qlora     Llama-3.1-8B shape at 16 x 512, project path: bf16 LoRA vs nf4 QLoRA, both loaded by
            ``evals.models.load_causal_lm`` from one saved checkpoint (QLoRA with
            ``quantization="nf4", compute_dtype=bfloat16``), each with gradient checkpointing off
            and on, so every QLoRA row has a bf16 row under the same setting.
  classify  Qwen2.5-0.5B shape over the demo tickets' real prompts (datasets/tickets, the served
            template ``PromptTemplate(instruction, labels, list_labels=False)``, SmolLM2's
            tokenizer; about 60 tokens, the system prompt shared), thousands of items per timed
            run. plain: left-padded batches in input order, one forward with last-position logits
            (``logits_to_keep=1``), argmax over the labels' first tokens; generate: 8 greedy
            tokens; project: ``LabelScorer.predict_ids`` (shared prompt head run once, length-sorted
            batches, label tree). Batches from ``CLASSIFY_BATCHES``; compile for plain and project.

Every measurement is one JSON line (to stdout and ``--out``, each naming the device); a summary
of the ratios against the plain arm of the same run and the issue's targets ends the run.
Measurements run most important first, and none starts after ``--budget-s``.

    python bench/gpu_fastpath.py --only train,qlora --out $OUT/fastpath-train.jsonl   # on the GPU
    python bench/gpu_fastpath.py --tiny                                               # CPU check, seconds
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
import traceback
from typing import Any, Callable

import _common  # noqa: F401  (puts the repository on sys.path)
import torch

PEAK = 989e12  # H100/H200 dense bf16 spec, as the anchor's MFU
DEV = "cuda" if torch.cuda.is_available() else "cpu"
DT = torch.bfloat16 if DEV == "cuda" else torch.float32  # --tiny on a CPU checks code paths, not speed
SECTIONS = ("train", "qlora", "classify")
OOM = torch.cuda.OutOfMemoryError
T0 = time.perf_counter()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU: checks every arm's code, in seconds")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    p.add_argument("--models", default="", help="comma-separated model shapes to keep for the train section")
    p.add_argument("--out", default=None, help="JSONL file (default: bench/results/gpu_fastpath-DEVICE.jsonl)")
    p.add_argument("--budget-s", type=float, default=300.0, help="no measurement starts after this many seconds")
    p.add_argument("--no-compile", action="store_true", help="skip the compiled measurements")
    p.add_argument("--items", type=int, default=None, help="classified items per timed run (default 8192; --tiny 48)")
    a = p.parse_args(argv)
    a.only = [s for s in a.only.split(",") if s]
    if set(a.only) - set(SECTIONS):
        p.error(f"unknown section(s) {sorted(set(a.only) - set(SECTIONS))}; choose from {SECTIONS}")
    a.models = [m for m in a.models.split(",") if m]
    a.items = a.items or (48 if a.tiny else 8192)
    return a


ARGS = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
WARMUP, STEPS = (1, 2) if ARGS.tiny else (2, 5)
SEQ = 16 if ARGS.tiny else 64
# Batches each training arm tries, per shape: the anchor's 64 and the sizes where the probes
# (../shared/anchors) saw the throughput level off; an OOM ends an arm's list.
TRAIN_BATCHES = {"qwen2.5-0.5b": (64, 256, 512), "llama3.2-1b": (64, 256), "llama3.1-8b": (64, 128)}
CLASSIFY_BATCHES = (8, 16) if ARGS.tiny else (256, 1024, 4096)
GENERATE_BATCHES = (8,) if ARGS.tiny else (64, 256)
QLORA_BATCH, QLORA_SEQ = (2, 32) if ARGS.tiny else (16, 512)
BACKEND = "aot_eager" if ARGS.tiny else "inductor"  # on a CPU: the compile path without C++ builds
DEVICE_NAME = torch.cuda.get_device_name() if DEV == "cuda" else "cpu"
OUT: _common.JsonLines | None = None


def emit(**kw: Any) -> dict[str, Any]:
    return OUT.emit(**kw)


def sync() -> None:
    if DEV == "cuda":
        torch.cuda.synchronize()


def reset_peak() -> None:
    if DEV == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if DEV == "cuda" else None


def release() -> None:
    gc.collect()
    if DEV == "cuda":
        torch.cuda.empty_cache()


def guarded(fn: Callable[[], Any], **where: Any) -> Any:
    """One measurement; an OOM or an error becomes a JSON line and the run goes on."""
    try:
        return fn()
    except OOM as err:
        emit(**where, error=f"OOM: {str(err).splitlines()[0][:200]}")
    except Exception as err:  # one failure must not lose the run's other figures
        traceback.print_exc(file=sys.stderr)
        emit(**where, error=f"{type(err).__name__}: {str(err)[:300]}")
    release()
    return None


def timed(step: Callable[[], Any], steps: int = STEPS, warmup: int = WARMUP) -> tuple[float, float]:
    """(seconds of ``steps`` steps after ``warmup``, seconds of the warm-up: where a compile goes)."""
    began = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    warm = time.perf_counter() - began
    began = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return time.perf_counter() - began, warm


def ratio(value: float | None, base: float | None) -> float | None:
    return round(value / base, 2) if value and base else None


# ------------------------------------------------------------------ models
def configs() -> dict[str, Any]:
    from transformers import LlamaConfig, Qwen2Config

    if ARGS.tiny:
        small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=49152, max_position_embeddings=2048)
        return {"qwen2.5-0.5b": Qwen2Config(**small, tie_word_embeddings=True),
                "llama3.2-1b": LlamaConfig(**small, tie_word_embeddings=True),
                "llama3.1-8b": LlamaConfig(**small, tie_word_embeddings=False)}
    return {  # the anchor's configs
        "qwen2.5-0.5b": Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                                    num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
                                    max_position_embeddings=4096),
        "llama3.2-1b": LlamaConfig(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                                   num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, head_dim=64,
                                   max_position_embeddings=4096),
        "llama3.1-8b": LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                                   num_key_value_heads=8, vocab_size=128256, max_position_embeddings=4096),
    }


def build(cfg: Any) -> Any:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(DEV):
        return AutoModelForCausalLM.from_config(cfg, dtype=DT, attn_implementation="sdpa")


def lora(model: Any) -> Any:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))


def matmul_params(model: Any, cfg: Any) -> int:
    """The anchor's count: every parameter but embeddings and LoRA, plus a tied LM head."""
    n = sum(p.numel() for name, p in model.named_parameters() if "embed_tokens" not in name and "lora_" not in name)
    return n + (cfg.vocab_size * cfg.hidden_size if getattr(cfg, "tie_word_embeddings", False) else 0)


def mfu(n_params: int, tok_s: float) -> float:
    return round(4 * n_params * tok_s / PEAK, 4)


def compiled(model: Any) -> Any:
    """The model with its blocks compiled in place, the product's way (``compile_blocks``)."""
    from evals.accelerator import compile_blocks

    compile_blocks(model, backend=BACKEND)
    return model


def uncompile(model: Any) -> None:
    """Undo ``compile_blocks``: Module.compile() keeps the original forward beside the compiled one."""
    for m in model.modules():
        if getattr(m, "_compiled_call_impl", None) is not None:
            m._compiled_call_impl = None
    torch._dynamo.reset()


# ------------------------------------------------------------------ training steps
def plain_step(model: Any, vocab: int, batch: int, seq: int) -> Callable[[], None]:
    """The anchor's loop: full-vocabulary loss at every position, AdamW, nothing else."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randint(0, vocab, (batch, seq), device=DEV)

    def step() -> None:
        model(input_ids=x, labels=x).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def project_train(model: Any, vocab: int, batch: int, seq: int) -> dict[str, Any]:
    """The sweep's SFT recipe as is; step times from its ``on_step`` hook, which runs after
    ``loss.item()`` (a device sync after the backward pass and the optimizer step)."""
    from optimizer.recipes.answers import AnswerRow
    from optimizer.recipes.loop import Schedule
    from optimizer.recipes.sft import train_sft

    answer = 6  # a label's tokens + end-of-turn
    gen = torch.Generator().manual_seed(batch)
    ids = torch.randint(1, vocab, (batch * (WARMUP + STEPS), seq), generator=gen).tolist()
    rows = [AnswerRow(r[:-answer], r[-answer:]) for r in ids]
    stamps: list[float] = []
    began = time.perf_counter()
    stats = train_sft(model, rows, pad_id=0, batch_size=batch, seed=0,
                      schedule=Schedule(learning_rate=1e-4, epochs=1, fail_if_stuck=False), on_step=lambda step, loss: stamps.append(time.perf_counter()))
    if stats.steps != WARMUP + STEPS or any(loss != loss for loss in stats.losses):
        raise RuntimeError(f"train_sft ran {stats.steps} steps, losses {stats.losses}")
    seconds = stamps[-1] - stamps[WARMUP - 1]
    return {"seconds": seconds, "warm_s": stamps[WARMUP - 1] - began, "loss_first": round(stats.losses[0], 3),
            "loss_last": round(stats.losses[-1], 3)}


def measure_train(name: str, cfg: Any, model: Any, arm: str, batch: int, seq: int, *, is_compiled: bool,
                  section: str = "train", **extra: Any) -> dict[str, Any] | None:
    """Tokens/s, MFU and peak memory of one arm at one batch: one JSON line."""
    where = dict(kind=section, model=name, arm=arm, batch=batch, seq=seq, compiled=is_compiled, **extra)

    def run() -> dict[str, Any]:
        release()
        reset_peak()
        if arm == "plain":
            seconds, warm = timed(plain_step(model, cfg.vocab_size, batch, seq))
            more: dict[str, Any] = {}
        else:
            r = project_train(model, cfg.vocab_size, batch, seq)
            seconds, warm = r.pop("seconds"), r.pop("warm_s")
            more = r
        tok_s = batch * seq * STEPS / seconds
        step_s = seconds / STEPS
        return emit(**where, tok_s=round(tok_s), mfu_4N=mfu(STATE[name]["N"], tok_s), peak_gib=peak_gib(),
                    step_s=round(step_s, 4), warmup_beyond_steps_s=round(max(0.0, warm - WARMUP * step_s), 1), **more)

    result = guarded(run, **where)
    release()
    return result


STATE: dict[str, dict[str, Any]] = {}  # per model: N, best batch per arm, rows


def best(rows: list[dict[str, Any]], key: str = "tok_s") -> dict[str, Any] | None:
    return max(rows, key=lambda r: r[key], default=None)


def train_uncompiled(name: str, cfg: Any) -> None:
    from evals import accelerator

    model = lora(build(cfg))
    st = STATE.setdefault(name, {"N": matmul_params(model, cfg), "plain": [], "project": []})
    for arm in ("plain", "project"):
        batches = [2, 4] if ARGS.tiny else list(TRAIN_BATCHES[name])
        if arm == "project" and DEV == "cuda":
            chosen = guarded(lambda m=model: accelerator.training_batch_size(m, SEQ, None), kind="batch_choice",
                             model=name)
            emit(kind="batch_choice", model=name, chosen=chosen, rule="evals.accelerator.training_batch_size(model, 64, None)")
            if chosen and chosen not in batches:
                batches = sorted(batches + [chosen])
        for batch in batches:
            row = measure_train(name, cfg, model, arm, batch, SEQ, is_compiled=False)
            if row is None:
                break  # an OOM or error: larger batches of this arm would fail too
            st[arm].append(row)
    del model
    release()


def train_compiled(name: str, cfg: Any, arm: str) -> None:
    st = STATE[name]
    top = best(st[arm])
    if top is None:
        return
    model = compiled(lora(build(cfg)))
    row = measure_train(name, cfg, model, arm, top["batch"], SEQ, is_compiled=True, backend=BACKEND)
    if row:
        st[arm + "_compiled"] = row
    uncompile(model)
    del model
    release()


# ------------------------------------------------------------------ QLoRA
def checkpointing(peft_model: Any, on: bool) -> None:
    """Activation checkpointing of every decoder layer, non-reentrant (no input grads needed);
    transformers 5.2x renamed it ``activation_checkpointing_*``: both spellings work."""
    inner = peft_model.base_model.model
    if on:
        if hasattr(inner, "activation_checkpointing_enable"):
            inner.activation_checkpointing_enable({"use_reentrant": False})
        else:
            inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    elif hasattr(inner, "activation_checkpointing_disable"):
        inner.activation_checkpointing_disable()
    else:
        inner.gradient_checkpointing_disable()


def section_qlora(name: str, cfg: Any) -> None:
    """bf16 LoRA and nf4 QLoRA, both through evals.models.load_causal_lm, each with and without
    gradient checkpointing. The random checkpoint is written once to local disk and read twice."""
    from evals.models import load_causal_lm

    st = STATE.setdefault(name + "/qlora", {"N": 0})
    with tempfile.TemporaryDirectory(prefix="fastpath-qlora-") as folder:
        began = time.perf_counter()
        base = build(cfg)
        st["N"] = matmul_params(base, cfg)
        base.save_pretrained(folder, safe_serialization=True)
        del base
        release()
        emit(kind="qlora_checkpoint", model=name, seconds=round(time.perf_counter() - began, 1))
        for mode, kwargs in (("lora-bf16", {}), ("qlora-nf4", {"quantization": "nf4", "compute_dtype": torch.bfloat16})):
            began = time.perf_counter()
            model = guarded(lambda: lora(load_causal_lm(folder, dtype=DT, device=DEV, **kwargs)), kind="qlora",
                            model=name, mode=mode)
            if model is None:
                continue
            emit(kind="qlora_load", model=name, mode=mode, seconds=round(time.perf_counter() - began, 1),
                 weights_gib=round(torch.cuda.memory_allocated() / 2**30, 2) if DEV == "cuda" else None,
                 compute_dtype=str(kwargs.get("compute_dtype", DT)))
            for gc_on in (False, True):
                checkpointing(model, gc_on)
                tag = mode + ("+gc" if gc_on else "")
                row = measure_train(name + "/qlora", cfg, model, "project", QLORA_BATCH, QLORA_SEQ, is_compiled=False,
                                    section="qlora", mode=tag, gradient_checkpointing=gc_on)
                if row:
                    st[tag] = row
            del model
            release()


# ------------------------------------------------------------------ classification
def ticket_prompts(model: Any, n: int) -> tuple[list[list[int]], Any, Any]:
    """``n`` tokenised prompts of the demo tickets (all splits, cycled in a seeded order), as the
    product serves a fine-tuned adapter: the task's instruction, no label list."""
    from evals.classify import LabelScorer, PromptTemplate
    from evals.data import load_examples
    from evals.models import load_tokenizer

    folder = _common.ROOT / "datasets" / "tickets"
    examples = [e for split in ("train", "validation", "test") for e in load_examples(folder / f"{split}.jsonl")]
    instruction = _common.demo_instruction()
    labels = tuple(sorted({e.label for e in examples}))
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    template = PromptTemplate(instruction, labels, list_labels=False)
    scorer = LabelScorer(model, tokenizer, template)
    texts = [e.text for e in examples]
    random.Random(0).shuffle(texts)
    unique = [scorer.prompt_ids(t) for t in texts[:n]]
    return [unique[i % len(unique)] for i in range(n)], tokenizer, template


def plain_classify(model: Any, prompts: list[list[int]], batch: int, pad_id: int, first_tokens: list[int]) -> list[int]:
    """What a plain script does: left-padded batches in input order, one forward keeping the last
    position's logits, the most probable label's first token."""
    allowed = torch.tensor(first_tokens, device=DEV)
    answers: list[int] = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch):
            chunk = prompts[start:start + batch]
            width = max(map(len, chunk))
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, p in enumerate(chunk):
                ids[row, width - len(p):] = torch.tensor(p)
                mask[row, width - len(p):] = 1
            logits = model(input_ids=ids.to(DEV), attention_mask=mask.to(DEV), logits_to_keep=1).logits[:, -1]
            answers += logits[:, allowed].argmax(-1).tolist()
    return answers


def generate8(model: Any, prompts: list[list[int]], batch: int, pad_id: int) -> None:
    with torch.inference_mode():
        for start in range(0, len(prompts), batch):
            chunk = prompts[start:start + batch]
            width = max(map(len, chunk))
            ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in chunk], device=DEV)
            model.generate(input_ids=ids, attention_mask=(ids != pad_id).long(), max_new_tokens=8, min_new_tokens=8,
                           do_sample=False, pad_token_id=pad_id)


CLS: dict[str, Any] = {"plain": [], "generate": [], "project": []}


def measure_classify(arm: str, run: Callable[[], Any], items: int, batch: int, *, is_compiled: bool,
                     **extra: Any) -> dict[str, Any] | None:
    where = dict(kind="classify", model="qwen2.5-0.5b", arm=arm, batch=batch, compiled=is_compiled, **extra)

    def measure() -> dict[str, Any]:
        release()
        reset_peak()
        seconds, warm = timed(run, steps=1, warmup=1)  # one warm-up pass over the items, one timed
        return emit(**where, items=items, items_s=round(items / seconds), seconds=round(seconds, 2),
                    warmup_beyond_run_s=round(max(0.0, warm - seconds), 1), peak_gib=peak_gib())

    return guarded(measure, **where)


def classify_setup() -> tuple[Any, list[list[int]], Any, Any]:
    model = build(configs()["qwen2.5-0.5b"]).eval()
    prompts, tokenizer, template = ticket_prompts(model, ARGS.items)
    lengths = sorted(map(len, prompts))
    emit(kind="classify_data", items=len(prompts), prompt_tokens_median=lengths[len(lengths) // 2],
         prompt_tokens_max=lengths[-1], labels=len(template.labels), template="demo tickets, list_labels=False")
    return model, prompts, tokenizer, template


def section_classify() -> None:
    from evals import accelerator
    from evals.classify import LabelScorer, label_token_ids

    model, prompts, tokenizer, template = classify_setup()
    CLS["model"], CLS["prompts"], CLS["tokenizer"], CLS["template"] = model, prompts, tokenizer, template
    pad = tokenizer.pad_token_id
    firsts = sorted({ids[0] for ids in label_token_ids(tokenizer, template.labels).values()})
    scorer = LabelScorer(model, tokenizer, template)
    emit(kind="classify_labels", label_tree_nodes=len(scorer._tree), branching_points=len(scorer._prefixes))
    batches = list(CLASSIFY_BATCHES)
    if DEV == "cuda":
        width = max(map(len, prompts))
        chosen = guarded(lambda: accelerator.inference_batch_size(model, width), kind="batch_choice", model="qwen2.5-0.5b")
        emit(kind="batch_choice", model="qwen2.5-0.5b", chosen=chosen,
             rule=f"evals.accelerator.inference_batch_size(model, {width})")
        batches = sorted(set(batches) | ({chosen} if chosen else set()))
    for batch in batches:
        row = measure_classify("plain", lambda b=batch: plain_classify(model, prompts, b, pad, firsts), len(prompts),
                               batch, is_compiled=False)
        if row:
            CLS["plain"].append(row)
        row = measure_classify("project", lambda b=batch: scorer.predict_ids(prompts, batch_size=b), len(prompts),
                               batch, is_compiled=False)
        if row:
            CLS["project"].append(row)
    few = prompts[: max(GENERATE_BATCHES) * (2 if ARGS.tiny else 4)]
    for batch in GENERATE_BATCHES:
        row = measure_classify("generate8", lambda b=batch: generate8(model, few, b, pad), len(few), batch,
                               is_compiled=False)
        if row:
            CLS["generate"].append(row)


def classify_compiled(arm: str) -> None:
    from evals.classify import LabelScorer, label_token_ids

    top = best(CLS[arm], "items_s")
    if top is None:
        return
    model, prompts, tokenizer, template = (CLS[k] for k in ("model", "prompts", "tokenizer", "template"))
    compiled(model)
    if arm == "plain":
        firsts = sorted({ids[0] for ids in label_token_ids(tokenizer, template.labels).values()})
        run = lambda: plain_classify(model, prompts, top["batch"], tokenizer.pad_token_id, firsts)  # noqa: E731
    else:
        scorer = LabelScorer(model, tokenizer, template)
        run = lambda: scorer.predict_ids(prompts, batch_size=top["batch"])  # noqa: E731
    row = measure_classify(arm, run, len(prompts), top["batch"], is_compiled=True, backend=BACKEND)
    if row:
        CLS[arm + "_compiled"] = row
    uncompile(model)


# ------------------------------------------------------------------ summary
TRAIN_TARGETS = {"qwen2.5-0.5b": (3.0, None), "llama3.2-1b": (2.0, None), "llama3.1-8b": (1.2, 0.33)}


def summary() -> None:
    verdicts: dict[str, dict[str, Any]] = {}
    lines = ["", "ratios against the plain arm of this run, each arm at its own best batch (compiled or not)"]
    for name, (target, target_mfu) in TRAIN_TARGETS.items():
        st = STATE.get(name)
        if not st:
            continue
        plain = best(st["plain"] + ([st["plain_compiled"]] if "plain_compiled" in st else []))
        ours = best(st["project"] + ([st["project_compiled"]] if "project_compiled" in st else []))
        if not plain or not ours:
            continue
        x = ours["tok_s"] / plain["tok_s"]
        ok = x >= target and (target_mfu is None or ours["mfu_4N"] >= target_mfu)
        verdicts[f"train {name}"] = dict(
            passed=ok, ratio=round(x, 2), project=_tag(ours), plain=_tag(plain), project_mfu=ours["mfu_4N"],
            target=f">= {target}x" + (f", MFU >= {target_mfu:.0%}" if target_mfu else ""))
    q = STATE.get("llama3.1-8b/qlora", {})
    for gc_tag in ("", "+gc"):
        lo, ql = q.get("lora-bf16" + gc_tag), q.get("qlora-nf4" + gc_tag)
        if lo and ql and lo.get("peak_gib") and ql.get("peak_gib"):
            mem, speed = ql["peak_gib"] / lo["peak_gib"], ql["tok_s"] / lo["tok_s"]
            verdicts["qlora llama3.1-8b" + gc_tag] = dict(
                passed=mem <= 0.40 and speed >= 0.6, memory_vs_bf16=round(mem, 3), speed_vs_bf16=round(speed, 2),
                gradient_checkpointing=bool(gc_tag), target="peak <= 40% of bf16 LoRA's at >= 0.6x its tokens/s")
    plain = best(CLS["plain"] + ([CLS["plain_compiled"]] if "plain_compiled" in CLS else []), "items_s")
    ours = best(CLS["project"] + ([CLS["project_compiled"]] if "project_compiled" in CLS else []), "items_s")
    gen = best(CLS["generate"], "items_s")
    if plain and ours and gen:
        rate = ours["items_s"]
        verdicts["classify qwen2.5-0.5b"] = dict(
            passed=rate >= 10_000 and rate >= 2 * plain["items_s"] and rate >= 30 * gen["items_s"],
            items_s=rate, vs_plain_forward=round(rate / plain["items_s"], 2),
            vs_generate8=round(rate / gen["items_s"], 1), project=_tag(ours), plain=_tag(plain), generate=_tag(gen),
            target=">= 10,000 items/s, >= 2x plain one-forward, >= 30x generate")
    for key, v in verdicts.items():
        lines.append(f"  {'PASS' if v['passed'] else 'below':<6} {key}: " +
                     ", ".join(f"{k} {val}" for k, val in v.items() if k != "passed"))
    print("\n".join(lines), flush=True)
    emit(kind="summary", verdicts=verdicts, wall_s=round(time.perf_counter() - T0, 1))


def _tag(row: dict[str, Any]) -> str:
    return f"{row['arm']} b{row['batch']}{' compiled' if row['compiled'] else ''}"


# ------------------------------------------------------------------ main
def jobs(cfgs: dict[str, Any]) -> list[tuple[str, Callable[[], None]]]:
    """The run's measurements, most important first, so a budget cut drops the least: for each
    shape in turn its uncompiled arms, then (for the first shape, where the targets need it) both
    compiled arms; QLoRA; then the other shapes' compiled arms."""
    queue: list[tuple[str, Callable[[], None]]] = []
    later: list[tuple[str, Callable[[], None]]] = []
    arms = () if ARGS.no_compile else ("project", "plain")
    if "train" in ARGS.only:
        for i, (name, cfg) in enumerate(cfgs.items()):
            queue.append((f"train {name}", lambda n=name, c=cfg: train_uncompiled(n, c)))
            compiled_jobs = [(f"train {name} {arm} compiled", lambda n=name, c=cfg, a=arm: train_compiled(n, c, a))
                             for arm in arms]
            (queue if i == 0 else later).extend(compiled_jobs)
    if "classify" in ARGS.only:
        queue.append(("classify", section_classify))
        queue += [(f"classify {arm} compiled", lambda a=arm: classify_compiled(a)) for arm in arms]
    if "qlora" in ARGS.only:
        queue.append(("qlora llama3.1-8b", lambda: section_qlora("llama3.1-8b", configs()["llama3.1-8b"])))
    return queue + later


def main() -> None:
    global OUT
    if DEV != "cuda" and not ARGS.tiny:
        sys.exit("no CUDA device: run with --tiny on a CPU (real shapes need the GPU)")
    _common.setup(threads=1 if DEV == "cpu" else torch.get_num_threads())
    slug = "tiny" if ARGS.tiny else DEVICE_NAME.lower().replace("nvidia ", "").replace(" ", "-")
    OUT = _common.JsonLines(ARGS.out or _common.RESULTS / f"gpu_fastpath-{slug}.jsonl", device=DEVICE_NAME)
    emit(kind="env", **_common.machine(torch.get_num_threads()), tiny=ARGS.tiny, sections=ARGS.only,
         warmup=WARMUP, steps=STEPS, compile_backend=BACKEND, budget_s=ARGS.budget_s,
         command=_common.command_line().replace(".venv/bin/python", "python"))
    cfgs = {k: v for k, v in configs().items() if not ARGS.models or k in ARGS.models}
    for label, job in jobs(cfgs):
        left = ARGS.budget_s - (time.perf_counter() - T0)
        if left <= 0:
            emit(kind="skipped", job=label, reason=f"budget: {ARGS.budget_s:.0f} s spent")
            continue
        guarded(job, kind="job", job=label)
    summary()
    print(f"wrote {OUT.path.name}", flush=True)


if __name__ == "__main__":
    main()
