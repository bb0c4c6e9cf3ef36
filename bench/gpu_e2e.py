#!/usr/bin/env python3
"""The product's CLI end to end on this machine's device, and CPU/device agreement on its bundle.

On the demo config (``roitune init``) with ``--set`` overrides: ``roitune baseline`` (classical
and zero-shot: the MiniLM encoder that the embedding and nearest-neighbour few-shot baselines
need does not travel to the GPU machine), a 4-trial ``roitune sweep`` whose four random start-up
trials are LoRA, QLoRA, DPO and a classifier head (the sweep's seed is the first whose start-up
draws cover them, found with the sweep's own sampler and ``optimizer.space.sample``, and the
trials run are checked afterwards), ``roitune export`` of the best trial and of the best trial
with the other head, then ``roitune predict`` of the test split with each bundle on the device
and again in a process that sees no GPU (``CUDA_VISIBLE_DEVICES=``): the share of equal labels
(target >= 99%) is the agreement.

    python bench/gpu_e2e.py --work /tmp/e2e --out $OUT/e2e.jsonl     # on the GPU machine
    python bench/gpu_e2e.py --tiny                                   # CPU check: tiny model and data
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common

KINDS = {"lora", "qlora", "dpo", "classifier"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true",
                   help="a tiny random model over SmolLM2's tokenizer and a few dozen rows (CPU check, about a minute)")
    p.add_argument("--work", default=None, help="folder for the config, study, trials and bundles (default: a temp dir)")
    p.add_argument("--out", default=None, help="JSONL file (default: bench/results/gpu_e2e-DEVICE.jsonl)")
    return p.parse_args(argv)


def tiny_model_folder(folder: Path) -> str:
    """A 2-layer random Llama with SmolLM2's tokenizer, saved like any local model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from evals.models import load_tokenizer

    tokenizer = load_tokenizer("smollm2-135m-instruct")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return str(folder)


def overrides(work: Path, *, tiny: bool, cuda: bool, model: str) -> list[str]:
    """The demo config's changes: what this check needs, and nothing a user would not set."""
    sets = {
        "storage": f"sqlite:///{work / 'roitune.db'}", "study": "gpu-e2e", "runs_dir": str(work / "runs"),
        "baselines.run": "[classical,zero-shot]", "baselines.llm": model,
        "search.base_models": f"[{model}]", "search.methods": "[lora,qlora,dpo]",
        "search.heads": "[generative,classifier]", "search.trials": "4", "search.pruner": "none",
        "search.evals_per_epoch": "1", "search.epochs": "[1]",
        # QLoRA in the device's compute dtype, until the trial asks evals.accelerator itself
        "search.compute_dtype": "[bfloat16]" if cuda else "[float32]",
    }
    if cuda:
        sets |= {"economics.hardware": "nvidia-h200", "search.batch_size": "[32]", "search.serving_batch_size": "256",
                 "search.max_eval_items": "null", "baselines.max_llm_items": "null", "baselines.batch_size": "64"}
    if tiny:
        sets |= {"data.max_train_rows": "48", "search.max_eval_items": "24", "baselines.max_llm_items": "16",
                 "search.batch_size": "[8]", "search.serving_batch_size": "8", "search.dpo_epochs": "1"}
    return [f"{key}={value}" for key, value in sets.items()]


def kind_of(method: str, head: str) -> str:
    return "classifier" if head == "classifier" else method


def covering_seed(config: Path, sets: list[str], limit: int = 500) -> int:
    """The first sweep seed whose 4 start-up trials (drawn at random by the sweep's TPESampler)
    are LoRA, QLoRA, DPO and a classifier head, with a generative LoRA or QLoRA among them."""
    import optuna

    from optimizer.config import load_config
    from optimizer.space import sample

    spec = load_config(config, sets).search
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for seed in range(limit):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4))
        drawn = []
        study.optimize(lambda t: drawn.append(sample(t, spec)) or 0.0, n_trials=4)
        kinds = {kind_of(s.method, s.head) for s in drawn}
        if kinds == KINDS and any(s.method in ("lora", "qlora") and s.head == "generative" for s in drawn):
            return seed
    raise SystemExit(f"no seed below {limit} covers {sorted(KINDS)}: the search space changed")


def predictions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    args = parse_args()
    machine = _common.setup(threads=os.cpu_count() or 1)
    import torch

    from evals.record import records
    from evals.storage import load_existing_study

    cuda = torch.cuda.is_available()
    device_name = torch.cuda.get_device_name() if cuda else "cpu"
    slug = ("tiny-" if args.tiny else "") + device_name.lower().replace("nvidia ", "").replace(" ", "-")
    out = _common.JsonLines(args.out or _common.RESULTS / f"gpu_e2e-{slug}.jsonl", device=device_name)
    work = Path(args.work or tempfile.mkdtemp(prefix="roitune-e2e-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    model = tiny_model_folder(work / "tiny-model") if args.tiny else "smollm2-135m-instruct"
    config = work / "roitune.yaml"
    sets = overrides(work, tiny=args.tiny, cuda=cuda, model=model)
    load = _common.LoadSampler()
    _common.run_commands({"init": ["init", "--out", str(config), "--force"]}, load)
    seed = covering_seed(config, sets)
    sets.append(f"search.seed={seed}")
    out.emit(kind="env", **machine, cuda=cuda, tiny=args.tiny, model="tiny random" if args.tiny else model,
             sweep_seed=seed, overrides=[s.replace(str(work), "WORK") for s in sets])
    flags = [f"--set={s}" for s in sets]
    common = ["-c", str(config), *flags]
    _, walls = _common.run_commands({"baseline": ["baseline", *common], "sweep": ["sweep", *common]}, load)

    study = load_existing_study(f"sqlite:///{work / 'roitune.db'}", "gpu-e2e")
    trials = [r for r in records(study) if r.kind.value == "trial"]
    for r in records(study):
        out.emit(kind="candidate", candidate=r.name, state=r.state, method=r.method,
                 head=r.settings.get("head"), validation_accuracy=r.validation.accuracy if r.validation else None,
                 items_per_second=r.items_per_second, serving_batch=r.meter.batch_size if r.meter else None,
                 measured_on=r.measured_on, train_tokens_per_second=r.training.tokens_per_second if r.training else None,
                 compute_seconds=r.compute_seconds, fail_reason=r.fail_reason)
    ran = {kind_of(r.method, r.settings.get("head", "generative")) for r in trials if r.state == "COMPLETE"}
    out.emit(kind="sweep", seconds=round(walls["sweep"], 1), baseline_seconds=round(walls["baseline"], 1),
             trials_complete=sum(r.state == "COMPLETE" for r in trials), kinds_complete=sorted(ran),
             covered=ran == KINDS)

    # The best trial's bundle, and the best with the other head, each predicted on both sides.
    complete = [r for r in trials if r.state == "COMPLETE" and r.validation]
    best = max(complete, key=lambda r: r.validation.accuracy)
    other = [r for r in complete if (r.settings.get("head") == "classifier") != (best.settings.get("head") == "classifier")]
    chosen = [("best", best.number)] + ([("other-head", max(other, key=lambda r: r.validation.accuracy).number)]
                                        if other else [])
    test = _common.ROOT / "datasets" / "tickets" / "test.jsonl"
    passed = True
    for tag, number in chosen:
        bundle = work / f"bundle-{tag}"
        fast, slow = work / f"predict-{tag}-device.jsonl", work / f"predict-{tag}-cpu.jsonl"
        _, walls = _common.run_commands({
            "export": ["export", *common, "--trial", str(number), "--out", str(bundle), "--force"],
            "predict": ["predict", str(bundle), str(test), "--out", str(fast), "--batch-size", "256" if cuda else "16"],
        }, load)
        began = time.perf_counter()
        cpu_env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        done = subprocess.run([sys.executable, "-m", "optimizer.cli", "predict", str(bundle), str(test), "--out",
                               str(slow), "--batch-size", "16"], env=cpu_env, cwd=_common.ROOT,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"CPU predict failed:\n{done.stderr[-3000:]}")
        a, b = predictions(slow), predictions(fast)
        agreement = _common.label_agreement([p["label"] for p in a], [p["label"] for p in b])
        record = next(r for r in trials if r.number == number)
        passed &= agreement["passed"]
        out.emit(kind="agreement", bundle=tag, trial=number, method=record.method, head=record.settings.get("head"),
                 **agreement, probability_shift_max=round(max(abs(x["probability"] - y["probability"])
                                                              for x, y in zip(a, b)), 4),
                 device_predict_seconds=round(walls["predict"], 1), cpu_predict_seconds=round(time.perf_counter() - began, 1),
                 compared="cuda vs cpu" if cuda else "cpu vs cpu (code path only: no GPU here)")
    verdict = passed and ran == KINDS
    out.emit(kind="summary", passed=verdict, covered=sorted(ran), bundles=[t for t, _ in chosen])
    print(f"\ne2e {'PASS' if verdict else 'FAILED'}: trials {sorted(ran)}, agreement on {len(chosen)} bundle(s) "
          f"{'>= 99%' if passed else 'below 99%'} | wrote {out.path.name}", flush=True)
    if not verdict:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
