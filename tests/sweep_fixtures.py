"""Small, fast material for sweep tests: a tiny random Llama saved as a local model folder
(loaded by path, like any user model) and an easy 4-label task whose labels are given away by
keywords, so a few training steps separate a trained adapter from an untrained one."""

from __future__ import annotations

import json
import random
from pathlib import Path

from optimizer.config import demo_config_text

TINY_LABELS = {
    "billing": ["invoice", "charged", "bill", "payment"],
    "network": ["signal", "wifi", "outage", "router"],
    "delivery": ["parcel", "courier", "shipped", "tracking"],
    "password": ["login", "password", "locked", "reset"],
}
FILLER = ["hello", "please", "help", "today", "my", "the", "is", "again", "thanks", "urgent", "still", "since"]


def write_tiny_model(folder: Path, tokenizer) -> Path:
    """A 2-layer, 64-wide Llama with the SmolLM2 tokenizer, saved as safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    # With the default 0.02 init, the tied LM head cannot express a confident answer at all
    # (max logit ~1), so training signal is tiny; unit-scale embeddings behave like a real model.
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, 1.0)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def write_tiny_task(folder: Path, *, seed: int = 0, per_label: tuple[int, int, int] = (16, 6, 6)) -> Path:
    """train/validation/test JSONL in the {text, label} format, no text repeated."""
    rng = random.Random(seed)
    seen: set[str] = set()
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in zip(("train", "validation", "test"), per_label):
        rows = []
        for label, keywords in TINY_LABELS.items():
            while sum(r["label"] == label for r in rows) < count:
                words = rng.sample(FILLER, 3) + [rng.choice(keywords)] + rng.sample(FILLER, 2)
                text = " ".join(words)
                if text not in seen:
                    seen.add(text)
                    rows.append({"text": text, "label": label})
        rng.shuffle(rows)
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def tiny_config(folder: Path, model_dir: Path | str, *, per_label: tuple[int, int, int] = (16, 6, 6), **search) -> Path:
    """The demo config pointed at the tiny task and model; ``search`` entries override."""
    import yaml

    config = yaml.safe_load(demo_config_text())
    data = write_tiny_task(folder / "data", per_label=per_label)
    config["data"] = {"train": str(data / "train.jsonl"), "validation": str(data / "validation.jsonl"),
                      "test": str(data / "test.jsonl")}
    config["baselines"] = {"run": ["classical"], "llm": str(model_dir)}
    config["search"].update({"base_models": [str(model_dir)], "methods": ["lora"], "heads": ["generative"],
                             "trial_timeout_s": None, "rank": [8], "epochs": [4], "batch_size": [8],
                             "learning_rate": {"low": 0.01, "high": 0.01}, "max_eval_items": None,
                             "evals_per_epoch": 1, "trials": 1, "serving_batch_size": 8})
    config["search"].update(search)
    config["storage"] = f"sqlite:///{folder / 'study.db'}"
    config["runs_dir"] = str(folder / "runs")
    path = folder / "roitune.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def sweep(config: Path, *flags: str) -> dict:
    """``roitune sweep --json`` in-process; its JSON summary (the command must succeed)."""
    from typer.testing import CliRunner

    from optimizer.cli import app

    result = CliRunner().invoke(app, ["sweep", "-c", str(config), "--json", *flags])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def study_of(config: Path):
    """The study a config names."""
    from evals.storage import load_existing_study
    from optimizer.config import load_config

    cfg = load_config(config)
    return load_existing_study(cfg.storage, cfg.study)
