#!/usr/bin/env python3
"""GPU fast-path benchmark: the project's training and classification paths against the plain
transformers + PEFT baseline (../shared/anchors/plain_peft_baseline.py), side by side in one run.

Random-initialised models of real shapes (throughput and memory do not depend on the weights'
values), bf16, SDPA, built directly on the device. Three sections:

  train     LoRA r16 all-linear on 64-token rows. Plain: ``m(input_ids=x, labels=x)`` (full
            vocabulary at every position, batch 64), exactly as the anchor. Project: the sweep's
            own ``optimizer.recipes.sft.train_sft`` (``collate`` of AnswerRows, 58-token prompt +
            6-token answer, ``answer_token_log_probs`` loss, the shared loop's AdamW, clipping
            and per-step NaN check) at batch 64 and at the largest of 512/256 that fits (from
            ``torch.cuda.mem_get_info``; 128 when neither does), then with ``torch.compile`` of
            the decoder (``model.base_model.model.model``); compile time is reported apart and
            excluded from throughput.
  qlora     Llama-3.1-8B shape at 16 x 512: bf16 LoRA vs nf4 QLoRA (double quant, bf16 compute),
            project path (answer-only logits). The 4-bit model is quantized in memory (no 16 GB
            save/reload); embeddings and LM head stay bf16 as transformers' loader leaves them.
            peft's ``prepare_model_for_kbit_training`` is NOT called: it upcasts the embeddings
            and LM head to fp32, which is why the anchor's QLoRA used more memory than bf16
            LoRA. ``+gc`` rows (gradient checkpointing) are bench-only: the sweep does not enable it.
  classify  Qwen2.5-0.5B shape, 64-token prompts. Plain: one forward with full logits at every
            position (batch 256) and ``generate`` of 8 tokens (batch 64), as the anchor. Project:
            ``evals.classify.LabelScorer`` over 40 labels with unique first tokens (one forward,
            ``logits_to_keep=1``) at batch 256/1024/4096, length-sorted; ``label_log_probs``
            alone (the device path) and ``predict_ids`` (what the sweep's meter times, with its
            per-item Prediction objects); then with the decoder compiled.

Each measurement is one JSON line; a table of ratios ends the run. Compile measurements come last
and only while the time budget (``--budget-s``) allows them, in order of importance.

    PYTHONPATH=. python bench/gpu_fastpath.py --out runs/fastpath.jsonl       # on the GPU
    PYTHONPATH=. python bench/gpu_fastpath.py --tiny                          # CPU check, < 1 min
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import traceback

import torch

PEAK = 989e12  # H100/H200 dense bf16 spec, as the anchor
DEV = "cuda" if torch.cuda.is_available() else "cpu"
DT = torch.bfloat16 if DEV == "cuda" else torch.float32  # CPU (--tiny) checks code paths, not speed
SECTIONS = ("train", "qlora", "classify")
OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
T0 = time.perf_counter()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny shapes (CPU check of the code paths)")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    p.add_argument("--models", default="", help="comma-separated model names to keep (default: all)")
    p.add_argument("--out", default=None, help="also write the JSON lines to this file")
    p.add_argument("--budget-s", type=float, default=450.0,
                   help="wall-clock budget; optional compile measurements are skipped beyond it")
    p.add_argument("--no-compile", action="store_true", help="skip every torch.compile measurement")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor; --tiny: aot_eager)")
    p.add_argument("--compile-b64", action="store_true", help="also compile at batch 64 (one more compile per model)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 3; --tiny 1)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 8; --tiny 2)")
    a = p.parse_args(argv)
    a.only = [s for s in a.only.split(",") if s]
    unknown = set(a.only) - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    a.models = [m for m in a.models.split(",") if m]
    a.compile_backend = a.compile_backend or ("aot_eager" if a.tiny else "inductor")
    a.warmup = a.warmup if a.warmup is not None else (1 if a.tiny else 3)
    a.steps = a.steps if a.steps is not None else (2 if a.tiny else 8)
    return a


ARGS = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
OUT = None
RESULTS: list[dict] = []


# ------------------------------------------------------------------ plumbing
def emit(**kw):
    kw.setdefault("t_s", round(time.perf_counter() - T0, 1))
    RESULTS.append(kw)
    line = json.dumps(kw)
    print(line, flush=True)
    if OUT:
        OUT.write(line + "\n")
        OUT.flush()


def elapsed() -> float:
    return time.perf_counter() - T0


def sync():
    if DEV == "cuda":
        torch.cuda.synchronize()


def reset_peak():
    if DEV == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gib():
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if DEV == "cuda" else None


def allocated_gib():
    return round(torch.cuda.memory_allocated() / 2**30, 2) if DEV == "cuda" else None


def free_memory():
    gc.collect()
    if DEV == "cuda":
        torch.cuda.empty_cache()


def guarded(fn, **where):
    """Run one measurement; an OOM or error is recorded as a line and the run goes on."""
    try:
        return fn()
    except OOM as err:
        msg = f"OOM: {str(err).splitlines()[0][:300]}"
    except Exception as err:  # record and continue: one failure must not lose the run
        msg = f"{type(err).__name__}: {str(err)[:400]}"
        traceback.print_exc(file=sys.stderr)
    emit(**where, error=msg)
    free_memory()
    return None


# ------------------------------------------------------------------ models
def configs() -> dict:
    from transformers import LlamaConfig, Qwen2Config

    if ARGS.tiny:
        small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=1000, max_position_embeddings=2048)
        return {"qwen2.5-0.5b": Qwen2Config(**small, tie_word_embeddings=True),
                "llama3.2-1b": LlamaConfig(**small, tie_word_embeddings=True),
                "smollm2-135m": LlamaConfig(**small, tie_word_embeddings=True),
                "llama3.1-8b": LlamaConfig(**small, tie_word_embeddings=False)}
    return {  # the anchor's configs, plus SmolLM2-135M (the bundled default model's shape)
        "qwen2.5-0.5b": Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                                    num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
                                    max_position_embeddings=4096),
        "llama3.2-1b": LlamaConfig(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                                   num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, head_dim=64,
                                   max_position_embeddings=4096),
        "smollm2-135m": LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                                    num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True, head_dim=64,
                                    max_position_embeddings=8192),
        "llama3.1-8b": LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                                   num_key_value_heads=8, vocab_size=128256, max_position_embeddings=4096),
    }


def build(cfg):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(DEV):
        return AutoModelForCausalLM.from_config(cfg, dtype=DT, attn_implementation="sdpa")


def lora(model):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))


def matmul_params(model, cfg) -> int:
    """The anchor's count: every parameter but embeddings and LoRA, plus a tied LM head."""
    n = sum(p.numel() for name, p in model.named_parameters() if "embed_tokens" not in name and "lora_" not in name)
    if getattr(cfg, "tie_word_embeddings", False):
        n += cfg.vocab_size * cfg.hidden_size
    return n


def mfu(n_params: int, tok_s: float) -> float:
    return round(4 * n_params * tok_s / PEAK, 4)


def compile_decoder(causal_lm):
    """torch.compile the decoder stack (``*ForCausalLM.model``) in place; returns the original."""
    original = causal_lm.model
    causal_lm.model = torch.compile(original, backend=ARGS.compile_backend)
    return original


def uncompile(causal_lm, original):
    causal_lm.model = original
    torch._dynamo.reset()


# ------------------------------------------------------------------ training
def plain_train(model, vocab: int, batch: int, seq: int) -> dict:
    """The anchor's loop: full-vocabulary loss at every position, AdamW, nothing else."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randint(0, vocab, (batch, seq), device=DEV)
    model.train()
    reset_peak()
    for i in range(ARGS.warmup + ARGS.steps):
        if i == ARGS.warmup:
            sync()
            began = time.perf_counter()
        out = model(input_ids=x, labels=x)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync()
    dt = time.perf_counter() - began
    result = {"tok_s": batch * seq * ARGS.steps / dt, "peak_gib": peak_gib(), "step_s": dt / ARGS.steps}
    del opt, x, out
    return result


def project_train(model, vocab: int, batch: int, prompt_len: int, answer_len: int) -> dict:
    """The sweep's SFT recipe as is: train_sft -> collate -> answer_token_log_probs -> shared loop.

    Step times come from the loop's ``on_step`` hook, which runs after ``loss.item()`` (a device
    sync that follows the backward pass and the optimizer step on the same stream)."""
    from optimizer.recipes.answers import AnswerRow
    from optimizer.recipes.sft import train_sft

    steps = ARGS.warmup + ARGS.steps
    gen = torch.Generator().manual_seed(batch)
    ids = torch.randint(1, vocab, (batch * steps, prompt_len + answer_len), generator=gen).tolist()
    rows = [AnswerRow(r[:prompt_len], r[prompt_len:]) for r in ids]
    stamps: list[float] = []
    free_memory()
    weights = allocated_gib()
    reset_peak()
    began = time.perf_counter()
    stats = train_sft(model, rows, pad_id=0, learning_rate=1e-4, epochs=1, batch_size=batch, seed=0,
                      on_step=lambda step, loss: stamps.append(time.perf_counter()))
    timed = stamps[-1] - stamps[ARGS.warmup - 1]
    per_step = [b - a for a, b in zip(stamps[ARGS.warmup - 1:], stamps[ARGS.warmup:])]
    step_s = sorted(per_step)[len(per_step) // 2]
    warm_s = stamps[ARGS.warmup - 1] - began
    tokens = batch * (prompt_len + answer_len) * ARGS.steps
    assert stats.steps == steps and all(l == l for l in stats.losses), "train_sft ran short or gave NaN"
    return {"tok_s": tokens / timed, "peak_gib": peak_gib(), "weights_gib": weights, "step_s": step_s,
            "warmup_s": warm_s, "extra_warmup_s": max(0.0, warm_s - ARGS.warmup * step_s),
            "loss_first": round(stats.losses[0], 3), "loss_last": round(stats.losses[-1], 3)}


def shape(seq: int):
    """(rows, prompt tokens, answer tokens) for a row length: a 6-token answer (label + end-of-turn)."""
    return seq - 6, 6


def pick_big_batch(per_row_bytes: float | None, candidates: tuple[int, ...]) -> tuple[int | None, str]:
    if DEV != "cuda" or per_row_bytes is None:
        return candidates[0], "cpu: first candidate"
    free_memory()
    free, total = torch.cuda.mem_get_info()
    for b in candidates:
        need = b * per_row_bytes * 1.15 + 2 * 2**30
        if need < free:
            return b, f"needs ~{need / 2**30:.0f} GiB of {free / 2**30:.0f} GiB free"
    return None, f"none of {candidates} fits in {free / 2**30:.0f} GiB free"


STATE: dict = {}  # per model: plain tok/s, big batch, step times, N (matmul params)


def train_uncompiled(name: str, cfg):
    seq = 16 if ARGS.tiny else 64
    prompt_len, answer_len = shape(seq)
    b64 = 4 if ARGS.tiny else 64
    candidates = (16, 8) if ARGS.tiny else (512, 256, 128)
    model = lora(build(cfg))
    n = matmul_params(model, cfg)
    st = STATE.setdefault(name, {"N": n})
    where = dict(kind="train", model=name, seq=seq)

    r = guarded(lambda: plain_train(model, cfg.vocab_size, b64, seq), **where, path="plain", batch=b64)
    free_memory()
    if r:
        st["plain"], st["plain_peak"], st["plain_batch"] = r["tok_s"], r["peak_gib"], b64
        emit(**where, path="plain", batch=b64, compiled=False, tok_s=round(r["tok_s"]), mfu_4N=mfu(n, r["tok_s"]),
             peak_gib=r["peak_gib"], ratio_vs_plain=1.0, matmul_params_m=round(n / 1e6))

    def project(batch):
        r = guarded(lambda: project_train(model, cfg.vocab_size, batch, prompt_len, answer_len),
                    **where, path="project", batch=batch, compiled=False)
        free_memory()
        if r:
            st.setdefault("project", {})[batch] = r
            emit(**where, path="project", batch=batch, compiled=False, tok_s=round(r["tok_s"]),
                 mfu_4N=mfu(n, r["tok_s"]), peak_gib=r["peak_gib"],
                 ratio_vs_plain=round(r["tok_s"] / st["plain"], 2) if st.get("plain") else None,
                 step_s=round(r["step_s"], 4), loss_first=r["loss_first"], loss_last=r["loss_last"])
        return r

    r64 = project(b64)
    per_row = None
    if r64 and DEV == "cuda":
        per_row = max(1.0, (r64["peak_gib"] - r64["weights_gib"]) * 2**30 / b64)
    big, why = pick_big_batch(per_row, candidates)
    emit(kind="batch_choice", model=name, batch=big, reason=why)
    if big:
        st["big"] = big
        project(big)
    del model
    free_memory()


def train_compiled(name: str, cfg, batch: int):
    seq = 16 if ARGS.tiny else 64
    prompt_len, answer_len = shape(seq)
    st = STATE[name]
    model = lora(build(cfg))
    inner = model.base_model.model
    original = compile_decoder(inner)
    where = dict(kind="train", model=name, seq=seq, path="project", batch=batch, compiled=True)
    r = guarded(lambda: project_train(model, cfg.vocab_size, batch, prompt_len, answer_len), **where)
    if r:
        st.setdefault("compiled", {})[batch] = r
        st["compile_s"] = r["extra_warmup_s"]
        emit(**where, backend=ARGS.compile_backend, tok_s=round(r["tok_s"]), mfu_4N=mfu(st["N"], r["tok_s"]),
             peak_gib=r["peak_gib"], ratio_vs_plain=round(r["tok_s"] / st["plain"], 2) if st.get("plain") else None,
             compile_s=round(r["extra_warmup_s"], 1), step_s=round(r["step_s"], 4))
    uncompile(inner, original)
    del model, inner, original
    free_memory()


# ------------------------------------------------------------------ QLoRA
def quantize_nf4_in_place(model) -> int:
    """Replace every nn.Linear in the decoder layers by a bitsandbytes nf4 Linear4bit (double
    quant, bf16 compute), quantizing the weights already on the device: what
    ``from_pretrained(quantization_config=BitsAndBytesConfig(load_in_4bit=True, ...))`` builds
    (embeddings and LM head stay bf16), without writing 16 GB to disk and reading it back."""
    import bitsandbytes as bnb

    replaced = 0
    for layer in model.model.layers:
        for parent in list(layer.modules()):
            for child_name, child in list(parent.named_children()):
                if type(child) is not torch.nn.Linear:
                    continue
                q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                      compute_dtype=DT, compress_statistics=True, quant_type="nf4", device="meta")
                weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, compress_statistics=True,
                                           quant_type="nf4", module=q)
                q.weight = weight.to(child.weight.device)  # .to() quantizes
                if child.bias is not None:
                    q.bias = child.bias
                setattr(parent, child_name, q)
                del child, weight
                replaced += 1
    model.is_loaded_in_4bit = True  # what transformers' bnb quantizer marks; peft dispatches on it
    model.is_quantized = True
    return replaced


def checkpointing(peft_model, on: bool):
    """Activation (gradient) checkpointing of every decoder layer, non-reentrant (no input grads
    needed). Renamed in transformers 5.2x (``activation_checkpointing_*``); both spellings work."""
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


def section_qlora(name: str, cfg):
    seq = 32 if ARGS.tiny else 512
    batch = 2 if ARGS.tiny else 16
    prompt_len, answer_len = shape(seq)
    st = STATE.setdefault(name + "/qlora", {})
    where = dict(kind="qlora", model=name, batch=batch, seq=seq)

    def run(mode, model):
        r = guarded(lambda: project_train(model, cfg.vocab_size, batch, prompt_len, answer_len), **where, mode=mode)
        free_memory()
        if r:
            st[mode] = r
            emit(**where, mode=mode, tok_s=round(r["tok_s"]), mfu_4N=mfu(STATE["N8"], r["tok_s"]),
                 peak_gib=r["peak_gib"], weights_gib=r["weights_gib"], step_s=round(r["step_s"], 4))

    base = build(cfg)
    STATE["N8"] = matmul_params(base, cfg)
    model = lora(base)
    r = guarded(lambda: plain_train(model, cfg.vocab_size, batch, seq), **where, mode="plain-lora-bf16")
    free_memory()
    if r:
        st["plain-lora-bf16"] = r
        emit(**where, mode="plain-lora-bf16", tok_s=round(r["tok_s"]), mfu_4N=mfu(STATE["N8"], r["tok_s"]),
             peak_gib=r["peak_gib"], note="anchor's full-vocabulary loss")
    run("lora-bf16", model)
    checkpointing(model, True)
    run("lora-bf16+gc", model)
    checkpointing(model, False)
    base = model.unload()
    del model
    free_memory()
    began = time.perf_counter()
    replaced = guarded(lambda: quantize_nf4_in_place(base), **where, mode="qlora-nf4")
    sync()
    free_memory()
    if not replaced:
        return
    emit(kind="qlora_build", model=name, linear_layers_quantized=replaced, seconds=round(time.perf_counter() - began, 1),
         weights_gib=allocated_gib(), bitsandbytes=__import__("bitsandbytes").__version__)
    model = lora(base)
    run("qlora-nf4", model)
    checkpointing(model, True)
    run("qlora-nf4+gc", model)
    del model, base
    free_memory()


# ------------------------------------------------------------------ classification
class LabelIds:
    """Token-id table standing in for a tokenizer: LabelScorer reads exactly these three things
    from one (``tokenizer(label, add_special_tokens=False)["input_ids"]``, ``eos_token_id``,
    ``pad_token_id``), so its own unmodified __init__ builds the label trie from id lists."""

    def __init__(self, label_ids: dict[str, list[int]], pad_token_id: int, eos_token_id: int):
        self.label_ids, self.pad_token_id, self.eos_token_id = label_ids, pad_token_id, eos_token_id

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": list(self.label_ids[text])}


def make_scorer(model, vocab: int, n_labels: int = 40):
    from evals.classify import LabelScorer, PromptTemplate

    gen = torch.Generator().manual_seed(1)
    eos = vocab - 1
    firsts = torch.randperm(vocab - 2, generator=gen)[:n_labels] + 1
    label_ids = {}
    for i, first in enumerate(firsts.tolist()):
        more = torch.randint(1, vocab - 1, (1 + i % 2,), generator=gen).tolist()  # 2-3 tokens per label
        label_ids[f"category_{i:02d}"] = [first] + more
    labels = tuple(label_ids)
    scorer = LabelScorer(model, LabelIds(label_ids, 0, eos), PromptTemplate("bench", labels))
    assert scorer._prefixes == [()], "labels' first tokens must be unique: one forward per item"
    return scorer


def time_label_path(scorer, prompts, batch: int) -> tuple[float, float]:
    """(items/s of label_log_probs alone, items/s of predict_ids) over ``prompts``."""
    sync()
    began = time.perf_counter()
    for start in range(0, len(prompts), batch):
        scorer.label_log_probs(prompts[start:start + batch])
    sync()
    device_path = len(prompts) / (time.perf_counter() - began)
    began = time.perf_counter()
    predictions = scorer.predict_ids(prompts, batch_size=batch)
    sync()
    full_path = len(predictions) / (time.perf_counter() - began)
    return device_path, full_path


def section_classify_uncompiled(name: str, cfg):
    seq = 16 if ARGS.tiny else 64
    st = STATE.setdefault(name + "/classify", {})
    base = build(cfg)
    base.eval()
    where = dict(kind="classify", model=name, prompt_tokens=seq)

    def plain_forward():  # the anchor's infer(): full logits at every position, batch 256
        bs = 8 if ARGS.tiny else 256
        x = torch.randint(0, cfg.vocab_size, (bs, seq), device=DEV)
        with torch.no_grad():
            for i in range(5):
                if i == 2:
                    sync()
                    began = time.perf_counter()
                base(input_ids=x)
        sync()
        return 3 * bs / (time.perf_counter() - began), bs

    def generate8():
        gb = 8 if ARGS.tiny else 64
        x = torch.randint(0, cfg.vocab_size, (gb, seq), device=DEV)
        with torch.no_grad():
            for i in range(3):
                if i == 1:
                    sync()
                    began = time.perf_counter()
                base.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=8, min_new_tokens=8,
                              do_sample=False, pad_token_id=0)
        sync()
        return 2 * gb / (time.perf_counter() - began), gb

    r = guarded(plain_forward, **where, path="plain-forward")
    if r:
        st["plain"] = r[0]
        emit(**where, path="plain-forward", batch=r[1], items_s=round(r[0]))
    r = guarded(generate8, **where, path="generate8")
    if r:
        st["generate"] = r[0]
        emit(**where, path="generate8", batch=r[1], items_s=round(r[0]))
    free_memory()
    _classify_batches(name, cfg, base, st, compiled=False)
    # the sweep scores with the adapter unmerged: its cost at the best batch
    best = max(st.get("project", {}).items(), key=lambda kv: kv[1][0], default=(None, None))[0]
    if best:
        model = lora(base)
        model.eval()
        _classify_batches(name, cfg, model, st, compiled=False, batches=(best,), tag="lora-unmerged")
        base = model.unload()
        del model
    del base
    free_memory()


def _classify_batches(name, cfg, model, st, *, compiled: bool, batches=None, tag="base"):
    seq = 16 if ARGS.tiny else 64
    batches = batches or ((8, 16) if ARGS.tiny else (256, 1024, 4096))
    n_items = 32 if ARGS.tiny else 16384
    scorer = make_scorer(model, cfg.vocab_size)
    gen = torch.Generator().manual_seed(2)
    prompts = torch.randint(1, cfg.vocab_size - 1, (n_items, seq), generator=gen).tolist()
    for batch in batches:
        where = dict(kind="classify", model=name, prompt_tokens=seq, path="project", batch=batch,
                     compiled=compiled, weights=tag)

        def measure():
            began = time.perf_counter()
            for _ in range(2):  # warm-up (and compile, for the compiled decoder)
                scorer.label_log_probs(prompts[:batch])
            sync()
            warm_s = time.perf_counter() - began
            reset_peak()
            device_path, full_path = time_label_path(scorer, prompts, batch)
            return warm_s, device_path, full_path

        r = guarded(measure, **where)
        free_memory()
        if not r:
            continue
        warm_s, device_path, full_path = r
        key = "project" if not compiled else "compiled"
        if tag == "base":
            st.setdefault(key, {})[batch] = (device_path, full_path)
        else:
            st.setdefault(tag, {})[batch] = (device_path, full_path)
        if compiled:
            st.setdefault("compile_s", {})[batch] = warm_s
        emit(**where, items_s=round(device_path), predict_ids_items_s=round(full_path), peak_gib=peak_gib(),
             ratio_vs_plain_forward=round(device_path / st["plain"], 2) if st.get("plain") else None,
             ratio_vs_generate8=round(device_path / st["generate"], 1) if st.get("generate") else None,
             **({"warmup_compile_s": round(warm_s, 1)} if compiled else {}))


def section_classify_compiled(name: str, cfg):
    st = STATE.setdefault(name + "/classify", {})
    base = build(cfg)
    base.eval()
    original = compile_decoder(base)
    # 4096 first (a static graph), then 1024 (one dynamic-shape recompile, which would serve any batch)
    _classify_batches(name, cfg, base, st, compiled=True, batches=(16,) if ARGS.tiny else (4096, 1024))
    uncompile(base, original)
    del base, original
    free_memory()


# ------------------------------------------------------------------ summary
def fmt(x, spec=",.0f"):
    return "-" if x is None else format(x, spec)


def verdict(ok):
    return "n/a" if ok is None else ("PASS" if ok else "below")


def summary():
    lines = ["", "=" * 100, "SUMMARY (ratios are against the plain baseline measured in this same run)", "=" * 100]
    targets = {"qwen2.5-0.5b": (3.0, None), "llama3.2-1b": (2.0, None), "llama3.1-8b": (1.2, 0.33), "smollm2-135m": (None, None)}
    verdicts = {}
    lines.append(f"{'train, LoRA r16, 64-token rows':<44}{'tok/s':>10}{'x plain':>9}{'MFU':>8}{'peak GiB':>10}")
    for name, (t_ratio, t_mfu) in targets.items():
        st = STATE.get(name)
        if not st:
            continue
        ours = [(f"project b{b}", r["tok_s"], r["peak_gib"]) for b, r in sorted(st.get("project", {}).items())]
        ours += [(f"project b{b} + compile ({r['extra_warmup_s']:.0f} s)", r["tok_s"], r["peak_gib"])
                 for b, r in sorted(st.get("compiled", {}).items())]
        best = max(ours, key=lambda r: r[1], default=None)
        rows = ([(f"plain b{st['plain_batch']} (anchor)", st["plain"], st.get("plain_peak"))] if st.get("plain") else []) + ours
        for label, tps, peak in rows:
            ratio = tps / st["plain"] if st.get("plain") else None
            lines.append(f"  {name + ' ' + label:<42}{fmt(tps):>10}{fmt(ratio, '.2f'):>9}"
                         f"{fmt(100 * 4 * st['N'] * tps / PEAK, '.1f') + '%':>8}{fmt(peak, '.1f'):>10}")
        if best and st.get("plain") and t_ratio:
            ratio = best[1] / st["plain"]
            best_mfu = 4 * st["N"] * best[1] / PEAK
            ok = ratio >= t_ratio and (t_mfu is None or best_mfu >= t_mfu)
            target = f">= {t_ratio}x" + (f", MFU >= {t_mfu:.0%}" if t_mfu else "")
            verdicts[f"train {name}"] = (ok, f"best {ratio:.2f}x ({best[0]}), MFU {best_mfu:.1%}; target {target}")
    q = STATE.get("llama3.1-8b/qlora")
    if q:
        lines.append("")
        lines.append(f"{'QLoRA, 8B shape, 16 x 512, answer-only logits':<44}{'tok/s':>10}{'x bf16':>9}{'peak GiB':>10}{'x bf16 mem':>12}")
        ref = q.get("lora-bf16")
        for mode in ("plain-lora-bf16", "lora-bf16", "lora-bf16+gc", "qlora-nf4", "qlora-nf4+gc"):
            r = q.get(mode)
            if not r:
                continue
            tr = r["tok_s"] / ref["tok_s"] if ref else None
            mr = r["peak_gib"] / ref["peak_gib"] if ref and r["peak_gib"] and ref["peak_gib"] else None
            lines.append(f"  {mode:<42}{fmt(r['tok_s']):>10}{fmt(tr, '.2f'):>9}{fmt(r['peak_gib'], '.1f'):>10}{fmt(mr, '.2f'):>12}")
            if mode.startswith("qlora") and tr is not None and mr is not None:
                verdicts[mode] = (mr <= 0.40 and tr >= 0.6, f"memory {mr:.0%} of bf16 LoRA, speed {tr:.2f}x; "
                                                            "target memory <= 40%, speed >= 0.6x")
    c = STATE.get("qwen2.5-0.5b/classify")
    if c:
        lines.append("")
        lines.append(f"{'classify, 0.5B shape, 64-token prompts':<44}{'items/s':>10}{'x fwd':>9}{'x gen8':>9}{'predict_ids':>13}")
        plain, gen = c.get("plain"), c.get("generate")
        if plain:
            lines.append(f"  {'plain forward b256, all logits (anchor)':<42}{fmt(plain):>10}{'1.00':>9}"
                         f"{fmt(plain / gen if gen else None, '.1f'):>9}")
        if gen:
            lines.append(f"  {'generate 8 tokens b64 (anchor)':<42}{fmt(gen):>10}{fmt(gen / plain if plain else None, '.2f'):>9}{'1.0':>9}")
        best = None
        for key, label in (("project", "LabelScorer"), ("lora-unmerged", "LabelScorer, LoRA unmerged"),
                           ("compiled", "LabelScorer + compile")):
            for b, (dev_path, full_path) in sorted(c.get(key, {}).items()):
                extra = f" ({c['compile_s'][b]:.0f} s warm-up)" if key == "compiled" else ""
                lines.append(f"  {label + ' b' + str(b) + extra:<42}{fmt(dev_path):>10}"
                             f"{fmt(dev_path / plain if plain else None, '.2f'):>9}"
                             f"{fmt(dev_path / gen if gen else None, '.1f'):>9}{fmt(full_path):>13}")
                if key != "lora-unmerged" and (best is None or dev_path > best[0]):
                    best = (dev_path, full_path, f"{label} b{b}")
        if best and plain and gen:
            ok = best[0] >= 2 * plain and best[0] >= 10_000 and best[0] >= 30 * gen
            verdicts["classify qwen2.5-0.5b"] = (ok, f"best {best[0]:,.0f} items/s ({best[2]}; predict_ids {best[1]:,.0f}): "
                                                     f"{best[0] / plain:.2f}x forward, {best[0] / gen:.1f}x generate; "
                                                     "target >= 2x and >= 10,000 items/s, >= 30x generate")
    lines.append("")
    lines.append("targets:")
    for key, (ok, text) in verdicts.items():
        lines.append(f"  {verdict(ok):<6} {key}: {text}")
    lines.append(f"wall time {elapsed():.0f} s")
    print("\n".join(lines), flush=True)
    emit(kind="summary", verdicts={k: {"pass": ok, "detail": text} for k, (ok, text) in verdicts.items()},
         wall_s=round(elapsed(), 1))


# ------------------------------------------------------------------ main
def main():
    global OUT
    if DEV != "cuda" and not ARGS.tiny:
        sys.exit("no CUDA device: run with --tiny on a CPU (real shapes need the GPU)")
    if DEV != "cuda":
        torch.set_num_threads(1)  # tiny shapes: threads only add overhead
    if ARGS.out:
        OUT = open(ARGS.out, "w")
    import peft
    import transformers

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    emit(kind="env", device=torch.cuda.get_device_name() if DEV == "cuda" else "cpu", torch=torch.__version__,
         transformers=transformers.__version__, peft=peft.__version__, tiny=ARGS.tiny, sections=ARGS.only,
         warmup=ARGS.warmup, steps=ARGS.steps, budget_s=ARGS.budget_s, compile_backend=ARGS.compile_backend)
    cfgs = {k: v for k, v in configs().items() if not ARGS.models or k in ARGS.models}

    # phase A: everything uncompiled (cheap, always runs)
    if "train" in ARGS.only:
        for name in ("qwen2.5-0.5b", "llama3.2-1b", "smollm2-135m", "llama3.1-8b"):
            if name in cfgs:
                guarded(lambda: train_uncompiled(name, cfgs[name]), kind="train", model=name)
    if "qlora" in ARGS.only and "llama3.1-8b" in cfgs:
        guarded(lambda: section_qlora("llama3.1-8b", cfgs["llama3.1-8b"]), kind="qlora", model="llama3.1-8b")
    if "classify" in ARGS.only and "qwen2.5-0.5b" in cfgs:
        guarded(lambda: section_classify_uncompiled("qwen2.5-0.5b", cfgs["qwen2.5-0.5b"]),
                kind="classify", model="qwen2.5-0.5b")

    # phase B: compile, most important first, while the budget allows
    jobs = []  # (label, job, kind of compile, seconds of measuring besides compiling)
    if not ARGS.no_compile:
        for name in ("qwen2.5-0.5b", "classify", "llama3.2-1b", "smollm2-135m", "llama3.1-8b"):
            if name == "classify":
                if "classify" in ARGS.only and "qwen2.5-0.5b" in cfgs:
                    jobs.append(("classify qwen2.5-0.5b",
                                 lambda: section_classify_compiled("qwen2.5-0.5b", cfgs["qwen2.5-0.5b"]), "infer", 15.0))
                continue
            st = STATE.get(name, {})
            if "train" not in ARGS.only or name not in cfgs or not st.get("big"):
                continue
            if ARGS.tiny and name != "qwen2.5-0.5b":  # one compiled training run checks the code path
                continue
            for b in ([st["big"]] + ([4 if ARGS.tiny else 64] if ARGS.compile_b64 else [])):
                steady = st.get("project", {}).get(b, {}).get("step_s", 1.0)
                jobs.append((f"train {name} b{b}", (lambda n=name, bb=b: train_compiled(n, cfgs[n], bb)), "train",
                             (ARGS.warmup + ARGS.steps) * steady + 5))
    # what a compile costs: the slowest seen so far of its kind, else a first guess for an H200
    # (0.5B decoder forward+backward: 74 s in the probe; the classify job compiles twice, forward only)
    seen = {"train": [], "infer": []}
    guess = {"train": 5.0 if ARGS.tiny else 90.0, "infer": 5.0 if ARGS.tiny else 70.0}
    for label, job, kind, run_s in jobs:
        estimate = (max(seen[kind]) if seen[kind] else guess[kind]) * 1.1 + run_s + 5
        left = ARGS.budget_s - elapsed()
        if estimate > left:
            emit(kind="skipped", job=f"compile {label}", reason=f"budget: needs ~{estimate:.0f} s, {left:.0f} s left")
            continue
        before = elapsed()
        guarded(job, kind="compile_job", job=label)
        seen[kind].append(max(0.0, elapsed() - before - run_s))
    summary()
    leaked = sorted(m for m in ("optuna", "trl", "typer", "streamlit", "pydantic") if m in sys.modules)
    if leaked:
        emit(kind="warning", imported_heavy_modules=leaked)
    if OUT:
        OUT.close()


if __name__ == "__main__":
    main()
