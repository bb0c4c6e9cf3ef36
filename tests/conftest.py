"""Session-wide test settings and shared model fixtures.

- Nothing is downloaded: ``HF_HUB_OFFLINE=1`` before anything imports transformers.
- ``ROITUNE_CACHE`` points at a folder that persists across runs (``~/.cache/roitune-test``
  unless already set), so the bundled SmolLM2's GGUF -> safetensors conversion (~30-40 s)
  happens once per machine, not once per test session.
- torch, OpenBLAS and scikit-learn run one OpenMP thread unless ``OMP_NUM_THREADS`` is set.
- ``gpu`` tests are skipped when there is no CUDA device (torch is imported lazily, so a run
  of the torch-free unit tests stays fast).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# One OpenMP thread unless told otherwise (export OMP_NUM_THREADS=2 to change it). On a 2-core
# machine shared with other processes, two spinning OpenMP threads made a SmolLM2 forward 5-10x
# slower than one thread, and this whole set took 185 s instead of 90 s.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ROITUNE_CACHE", str(Path.home() / ".cache" / "roitune-test"))

REPO_ROOT = Path(__file__).resolve().parent.parent
# Shared by the integration and the reliability tests: the hosted fakes (a real TF-IDF model behind
# optimizer.serve, a fault-injecting proxy) and a real PostgreSQL server.
pytest_plugins = ["hosted_fakes", "postgres_server"]
SMOLLM = "smollm2-135m-instruct"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tickets_dir() -> Path:
    """The bundled demo tickets (train/validation/test/preferences JSONL)."""
    path = REPO_ROOT / "datasets" / "tickets"
    assert (path / "train.jsonl").is_file(), path
    return path


@pytest.fixture(scope="session")
def smollm_tokenizer():
    from evals.models import load_tokenizer

    return load_tokenizer(SMOLLM)


@pytest.fixture(scope="session")
def smollm(smollm_tokenizer):
    """(tokenizer, model) of the real bundled SmolLM2-135M-Instruct, float32, eval mode."""
    from evals.models import load_causal_lm

    return smollm_tokenizer, load_causal_lm(SMOLLM, device="cpu")


@pytest.fixture(scope="session")
def tiny_llama(smollm_tokenizer):
    """A tiny random LlamaForCausalLM (2 layers, hidden 64) over the SmolLM2 tokenizer's vocab.

    Seeded, float32, eval mode: fast enough to run every prompt through it many times.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(smollm_tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=smollm_tokenizer.pad_token_id,
        eos_token_id=smollm_tokenizer.eos_token_id,
        bos_token_id=smollm_tokenizer.bos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config).float().eval()
    # A random init gives nearly uniform next-token distributions; larger weights make the
    # label probabilities differ clearly, so a wrong path or position would show.
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, 1.0)
    return smollm_tokenizer, model
