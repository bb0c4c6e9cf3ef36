"""The product's CUDA path (``gpu`` tests, skipped without a CUDA device) and its CPU fallbacks.

On CUDA: batch sizes come from free memory and a measured footprint, QLoRA computes in bf16,
LabelScorer and HeadClassifier give the CPU's answers, and a LoRA step lowers the loss. On the
CPU: every device decision returns what was asked, and the same loader picks the CPU's dtype.
"""

from __future__ import annotations

import copy

import pytest

from evals import accelerator
from evals.classify import HeadClassifier, LabelScorer, PromptTemplate

LABELS = ("billing", "billing_dispute", "refund", "shipping")
TEXTS = ["I was charged twice", "where is my parcel", "refund please", "ok", "the invoice is wrong, explain it",
         "my order arrived broken and I want the money back"]

gpu = pytest.mark.gpu


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, tiny_llama):
    """The tiny random Llama saved as a model folder (what load_causal_lm loads by path)."""
    tokenizer, model = tiny_llama
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def _lora(model, task_type="CAUSAL_LM"):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type=task_type))


def _distributions(predictions):
    return [p.distribution[label] for p in predictions for label in LABELS]


# -- CPU fallbacks -----------------------------------------------------------------------------

def test_on_a_cpu_the_batch_sizes_are_what_was_asked(tiny_llama):
    _, model = tiny_llama
    assert accelerator.training_batch_size(model, 64, 24) == 24
    assert accelerator.training_batch_size(model, 64, None) == accelerator.CPU_TRAIN_BATCH
    assert accelerator.inference_batch_size(model, 64, 8) == 8
    assert accelerator.inference_batch_size(model, 64) == accelerator.CPU_SERVING_BATCH


def test_qlora_on_a_cpu_computes_in_the_cpu_dtype_with_sdpa(tiny_folder):
    import torch

    from evals.models import load_causal_lm

    model = load_causal_lm(str(tiny_folder), quantization="nf4", device="cpu")

    expected = accelerator.compute_dtype("cpu")  # fp32 without bf16 units, bf16 with them
    assert str(model.config.quantization_config.bnb_4bit_compute_dtype).endswith(str(expected).split(".")[-1])
    assert model.config._attn_implementation == "sdpa"
    assert model.get_input_embeddings().weight.dtype == torch.float32


# -- CUDA ------------------------------------------------------------------------------------

@gpu
def test_cuda_batch_sizes_come_from_free_memory(tiny_llama):
    import torch

    _, model = tiny_llama
    model = _lora(copy.deepcopy(model).to("cuda"))
    footprint = accelerator.measure_footprint(model, 64, train=True)
    assert footprint.per_row > 0
    assert all(p.grad is None for p in model.parameters())  # the probe leaves no gradients

    assert accelerator.training_batch_size(model, 64, None) == accelerator.MAX_TRAIN_BATCH  # a tiny model
    # a nearly full card: room for five rows beside the reserve, so four (the power of two below)
    _, total = torch.cuda.mem_get_info()
    reserve = max(accelerator.RESERVE_MIN_BYTES, int(accelerator.RESERVE_FRACTION * total))
    squeezed = accelerator.training_batch_size(model, 64, None, footprint=footprint, total_bytes=total,
                                               free_bytes=reserve + footprint.fixed + 5 * footprint.per_row)
    assert squeezed == 4
    assert accelerator.inference_batch_size(model, 64, 48) == 48
    assert accelerator.serving_batch_size("cuda") == accelerator.CUDA_SERVING_BATCH


@gpu
def test_qlora_on_cuda_computes_in_bf16(tiny_folder):
    import bitsandbytes as bnb
    import torch

    from evals.models import load_causal_lm

    model = load_causal_lm(str(tiny_folder), quantization="nf4")

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and all(m.compute_dtype == torch.bfloat16 for m in layers)
    assert model.get_input_embeddings().weight.dtype == torch.bfloat16
    assert model.device.type == "cuda"


@gpu
def test_label_scorer_on_cuda_gives_the_cpu_answers(tiny_llama):
    import torch

    tokenizer, model = tiny_llama
    template = PromptTemplate("Route the ticket.", LABELS)
    cpu = LabelScorer(model, tokenizer, template).predict(TEXTS, batch_size=4)
    cuda = LabelScorer(copy.deepcopy(model).to("cuda"), tokenizer, template).predict(TEXTS, batch_size=4)
    bf16 = LabelScorer(copy.deepcopy(model).to("cuda", torch.bfloat16), tokenizer, template).predict(TEXTS, batch_size=4)

    assert [p.label for p in cuda] == [p.label for p in cpu]
    assert _distributions(cuda) == pytest.approx(_distributions(cpu), abs=1e-4)
    assert _distributions(bf16) == pytest.approx(_distributions(cpu), abs=5e-2)


@gpu
def test_head_classifier_on_cuda_gives_the_cpu_answers(tiny_llama):
    import torch
    from transformers import LlamaForSequenceClassification

    tokenizer, causal = tiny_llama
    config = copy.deepcopy(causal.config)
    config.num_labels = len(LABELS)
    torch.manual_seed(1)
    model = LlamaForSequenceClassification(config).eval()
    with torch.no_grad():
        model.score.weight.normal_(0.0, 1.0)
    cpu = HeadClassifier(model, tokenizer, LABELS).predict(TEXTS, batch_size=4)
    cuda = HeadClassifier(copy.deepcopy(model).to("cuda"), tokenizer, LABELS).predict(TEXTS, batch_size=4)

    assert [p.label for p in cuda] == [p.label for p in cpu]
    assert _distributions(cuda) == pytest.approx(_distributions(cpu), abs=1e-4)


@gpu
def test_a_lora_step_on_cuda_lowers_the_loss(tiny_llama):
    import torch

    from optimizer.recipes.answers import answer_rows
    from optimizer.recipes.sft import train_sft

    tokenizer, model = tiny_llama
    torch.manual_seed(0)
    model = _lora(copy.deepcopy(model).to("cuda", torch.bfloat16))
    scorer = LabelScorer(model, tokenizer, PromptTemplate("Route the ticket.", LABELS))

    class Row:
        def __init__(self, text, label):
            self.text, self.label = text, label

    rows = answer_rows(scorer, [Row(text, LABELS[i % len(LABELS)]) for i, text in enumerate(TEXTS)]) * 4
    stats = train_sft(model, rows, pad_id=tokenizer.pad_token_id, learning_rate=1e-2, epochs=10,
                      batch_size=8, seed=0)

    assert next(model.parameters()).device.type == "cuda"
    assert sum(stats.losses[-3:]) / 3 < 0.7 * sum(stats.losses[:3]) / 3
