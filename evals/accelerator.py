"""Device decisions for training and serving: batch sizes from free memory, compute dtype,
the serving batch a server would use, and when ``torch.compile`` pays.

Each decision has a pure arithmetic core that takes the measured figures as arguments (free
bytes, bytes a row adds), so it is testable without a GPU, and a thin wrapper that measures
them on CUDA. On a CPU every wrapper returns what the caller asked for: there is no device
memory to fill, and a bigger batch is not faster on a few cores.

Figures behind the defaults (``../shared/anchors``, one H200, Qwen2.5-0.5B shape, 64-token rows):
LoRA training with answer-only logits ran 2.3x faster at batch 256 than at 64 and gained only
7% more at 1024; classification with last-position logits reached 94% of its batch-4096 rate at
batch 256; ``torch.compile`` of the whole decoder took 74 s and then trained 1.69x faster (the
blocks compiled one by one, as here, share one graph and compile in a fraction of that).
``bench/gpu_fastpath.py`` measures these again for each model shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

GIB = 2**30
# Kept free beside the estimate: the allocator's fragmentation, cuBLAS/attention workspaces and
# the optimizer's first step grow past what a probe's forward and backward show.
RESERVE_FRACTION = 0.10
RESERVE_MIN_BYTES = 2 * GIB
# The most rows a batch gets when the caller leaves the size to memory: past these, the probes
# above gained little throughput, and a trial needs enough optimizer steps per epoch.
MAX_TRAIN_BATCH = 256
MAX_INFERENCE_BATCH = 1024
CPU_TRAIN_BATCH = 16  # the sweep's default batch on the CPU machines
CPU_SERVING_BATCH = 32  # search.serving_batch_size's default, measured on 2 cores
CUDA_SERVING_BATCH = 256  # 94% of batch 4096's items/s in the probe, at a sixteenth of its latency
PROBE_ROWS = 4  # rows of the smaller probe batch; the larger has twice as many
# torch.compile of a 0.5B decoder: 74 s, then 1.69x the eager speed (fastpath_probe2): an upper
# bound on the compile, whose blocks now compile once; bench/gpu_fastpath.py measures both.
COMPILE_SECONDS = 74.0
COMPILE_SPEEDUP = 1.69


@dataclass(frozen=True)
class Footprint:
    """Device bytes of a batch: ``fixed + rows * per_row`` (activations grow with rows;
    workspaces and the LoRA optimizer state do not)."""

    per_row: int
    fixed: int = 0

    def bytes_for(self, rows: int) -> int:
        return self.fixed + rows * self.per_row


def _device_of(model: PreTrainedModel) -> str:
    return next(model.parameters()).device.type


def batch_that_fits(free_bytes: int, total_bytes: int, footprint: Footprint, *, cap: int,
                    requested: int | None = None) -> int:
    """The largest power of two (at most ``cap``, and at most ``requested`` when given) whose
    footprint fits in ``free_bytes`` less the reserve; at least 1, where even one row does not
    fit the caller's forward will raise the out-of-memory error that says so."""
    reserve = max(RESERVE_MIN_BYTES, int(RESERVE_FRACTION * total_bytes))
    room = free_bytes - reserve - footprint.fixed
    limit = min(cap, requested) if requested else cap
    rows = 1
    while rows * 2 <= limit and (rows * 2) * footprint.per_row <= room:
        rows *= 2
    if requested and rows < requested <= limit and requested * footprint.per_row <= room:
        return requested  # a requested size that fits is kept as is, power of two or not
    return rows


def measure_footprint(model: PreTrainedModel, tokens_per_row: int, *, train: bool,
                      probe_rows: int = PROBE_ROWS) -> Footprint:
    """Peak CUDA bytes of one forward (and backward, when ``train``) at ``probe_rows`` and twice
    that: the difference is what a row adds, the rest is fixed. Runs on random token ids of the
    given length; causal LMs keep logits for the last few positions only, as the recipes and the
    scorer do. Gradients the probe leaves are cleared."""
    import torch

    device = next(model.parameters()).device
    vocab = model.config.vocab_size
    causal = model.get_output_embeddings() is not None
    peaks = []
    was_training = model.training
    model.train(train)
    for rows in (probe_rows, 2 * probe_rows):
        ids = torch.randint(1, vocab, (rows, tokens_per_row), device=device)
        extra = {"logits_to_keep": 8, "use_cache": False} if causal else {}
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        if train:
            model(input_ids=ids, **extra).logits.float().logsumexp(-1).mean().backward()
        else:
            with torch.inference_mode():
                model(input_ids=ids, **extra)
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - before)
        for p in model.parameters():
            p.grad = None
    model.train(was_training)
    per_row = max(1, (peaks[1] - peaks[0]) // probe_rows)
    return Footprint(per_row=per_row, fixed=max(0, peaks[0] - probe_rows * per_row))


def _cuda_batch(model: PreTrainedModel, tokens_per_row: int, requested: int | None, *, train: bool, cap: int,
                free_bytes: int | None, total_bytes: int | None, footprint: Footprint | None) -> int:
    import torch

    footprint = footprint or measure_footprint(model, tokens_per_row, train=train)
    if free_bytes is None or total_bytes is None:
        torch.cuda.empty_cache()  # cached blocks count as used in mem_get_info
        free, total = torch.cuda.mem_get_info(next(model.parameters()).device)
        free_bytes, total_bytes = free_bytes or free, total_bytes or total
    return batch_that_fits(free_bytes, total_bytes, footprint, cap=cap, requested=requested)


def training_batch_size(model: PreTrainedModel, tokens_per_row: int, requested: int | None, *,
                        free_bytes: int | None = None, total_bytes: int | None = None,
                        footprint: Footprint | None = None) -> int:
    """Rows per training step for rows of ``tokens_per_row`` (the longest the data has).

    CPU: ``requested`` (or 16). CUDA: the largest power of two that fits in free memory, at
    most ``requested`` (a trial's batch size is a searched setting: memory may lower it, never
    raise it) or, when None, at most ``MAX_TRAIN_BATCH``. The footprint is measured unless given.
    """
    if _device_of(model) != "cuda":
        return requested or CPU_TRAIN_BATCH
    return _cuda_batch(model, tokens_per_row, requested, train=True, cap=MAX_TRAIN_BATCH,
                       free_bytes=free_bytes, total_bytes=total_bytes, footprint=footprint)


def inference_batch_size(model: PreTrainedModel, tokens_per_row: int, requested: int | None = None, *,
                         free_bytes: int | None = None, total_bytes: int | None = None,
                         footprint: Footprint | None = None) -> int:
    """Items per forward when classifying rows of ``tokens_per_row``: CPU ``requested`` (or the
    serving batch); CUDA the largest power of two that fits, at most ``requested`` or, when None,
    at most ``MAX_INFERENCE_BATCH``."""
    if _device_of(model) != "cuda":
        return requested or CPU_SERVING_BATCH
    return _cuda_batch(model, tokens_per_row, requested, train=False, cap=MAX_INFERENCE_BATCH,
                       free_bytes=free_bytes, total_bytes=total_bytes, footprint=footprint)


def serving_batch_size(device: str, requested: int | None = None) -> int:
    """The batch a server would run on ``device`` ("cpu", "cuda", "cuda:0"): what $/item is
    metered at. A configured size wins; else 256 on CUDA, 32 on a CPU."""
    if requested:
        return requested
    return CUDA_SERVING_BATCH if device.startswith("cuda") else CPU_SERVING_BATCH


def compute_dtype(device: str) -> torch.dtype:
    """The dtype to compute in on ``device``: bf16 on CUDA (fp16 on a GPU without bf16); on a
    CPU bf16 only where it has bf16 units (AMX, AVX-512 BF16), else fp32, since bf16 on a CPU
    without them ran 8.9x slower than fp32."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    from evals.models import cpu_bf16_units

    return torch.bfloat16 if cpu_bf16_units() else torch.float32


def compile_pays(eager_seconds: float, *, compile_seconds: float = COMPILE_SECONDS,
                 speedup: float = COMPILE_SPEEDUP) -> bool:
    """Whether compiling saves time on work that takes ``eager_seconds`` uncompiled."""
    return eager_seconds - eager_seconds / speedup > compile_seconds


def compile_blocks(model: PreTrainedModel, *, backend: str = "inductor") -> int:
    """``torch.compile`` each block of the model's repeated stack (decoder or encoder layers,
    under a PEFT wrapper too) in place; returns how many. The blocks share one compiled graph,
    so the compile costs about one layer's, not the whole stack's (PyTorch's "regional
    compilation"). ``Module.compile()`` wraps nothing: parameter names, a saved adapter's keys
    and ``unload()`` stay as they were. The embeddings, LM head and loss stay eager.
    """
    import torch

    stacks = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 1]
    if not stacks:
        raise ValueError(f"{type(model).__name__} has no repeated block stack to compile")
    blocks = max(stacks, key=lambda m: sum(p.numel() for p in m.parameters()))
    for block in blocks:
        block.compile(backend=backend)
    return len(blocks)


def maybe_compile(model: PreTrainedModel, device: str, *, eager_seconds: float,
                  compile_seconds: float = COMPILE_SECONDS, speedup: float = COMPILE_SPEEDUP) -> bool:
    """Compile the model's blocks (``compile_blocks``) when on CUDA and the work, ``eager_seconds``
    uncompiled, is long enough to repay the compile; returns whether it compiled. On a CPU
    never: inductor's C++ compile costs more than it saves on a few cores."""
    if not device.startswith("cuda") or not compile_pays(eager_seconds, compile_seconds=compile_seconds,
                                                         speedup=speedup):
        return False
    compile_blocks(model)
    return True
