#!/usr/bin/env python3
"""Training throughput of one LoRA trial on CPU: the project's loop vs a plain PEFT loop vs TRL.

SmolLM2-135M-Instruct (the bundled model), fp32 weights, LoRA r16 / alpha 32 / no dropout on all
linear layers, rows from datasets/tickets/train.jsonl (system instruction, ticket, assistant
answer = the label, through the chat template), batch 16. Arms:

  plain        the loop of ../shared/anchors/plain_peft_baseline.py on these rows: right
               padding, ``model(input_ids, attention_mask, labels)`` (full-vocabulary logits at
               every position, causal-LM loss on every real token), AdamW.
  project      ``optimizer.recipes.sft.train_sft`` as a sweep trial calls it (rows from
               ``answer_rows``: left padding, length-bucketed batches, logits only at the answer
               positions via ``logits_to_keep``, answer-only loss, clipping, NaN check).
  trl-fixed    TRL ``SFTTrainer`` + ``peft_config`` with ``bf16=False, gradient_checkpointing=False``.
  trl-fp32     ``bf16=False`` only (gradient checkpointing on, TRL's default).
  trl-default  every SFTConfig default (bf16 mixed precision, gradient checkpointing, the fused
               LM head with its entropy and token-accuracy metrics), at ``--trl-default-batch``
               (default 4) next to its twin ``trl-fp32`` at the same batch: on a CPU without bf16
               units (AVX2 only) bf16 matmuls ran at ~0.6 GFLOP/s (fp32: ~20), so one batch-16
               step would take ~10 minutes; its batch-16 speed is derived as
               trl-fp32(16) / (bf16 factor at 4), on every CPU alike.
               Both small-batch arms get one timed step and no warm-up (symmetric).
All TRL arms get ``use_cpu=True`` (without it the defaults stop on a CPU-only machine: "Your setup
doesn't support bf16/gpu") and prompt-completion rows, so TRL's default loss is completion-only,
like the project's (on CPU TRL still projects every position: its compact path needs Triton).

Every arm is a fresh copy of the model driven from its own thread; a scheduler lets one arm run
at a time. trl-default and its twin run first, one after the other, and are freed (memory); then
the four batch-16 arms are interleaved (round 1: each arm's warm-up step + one timed step,
round 2: one timed step each, ...), so load drift hits all of them alike. A step is timed from the end of the
previous step (or from the arm's resumption) to its end, so batch preparation counts. Tokens are
real (non-padding) tokens, prompt and answer; rows/s is the cleanest comparison (same rows).

Then the LM head alone (forward + backward of the output layer and loss on real batch shapes,
3 interleaved reps): plain's full logits, TRL's chunked fused head (with and without its
metrics), and the project's answer positions only: which part of the step each recipe spends on
the 49,152-entry vocabulary.

Run: .venv/bin/python bench/trial_throughput.py [--small] [--threads 1] [--trl-default-batch 4]
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import ROOT, LoadSampler, log, parser, setup, table, write_result

INSTRUCTION = "Route the customer support ticket to exactly one category."


@dataclass
class Arm:
    name: str
    description: str
    warmup: int  # untimed steps before the first timed one
    per_round: list[int]  # timed steps in each round (0: skip that round)
    batch: int = 16
    overrides: dict = field(default_factory=dict)  # SFTConfig settings (TRL arms)
    nometrics: bool = False
    times: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    error: str | None = None
    threads_seen: set = field(default_factory=set)

    @property
    def total_steps(self) -> int:
        return self.warmup + sum(self.per_round)


def rss_gb() -> float:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


class Stop(Exception):
    pass


class Scheduler:
    """One arm runs at a time; ``run(arm, n)`` lets it take n steps and waits until it yields."""

    def __init__(self):
        self.cond = threading.Condition()
        self.turn: str | None = None
        self.quota = 0
        self.ready: set[str] = set()

    def wait_ready(self, threads) -> None:
        """Until every live arm has built its model and trainer (none competes with a timed step)."""
        with self.cond:
            self.cond.wait_for(lambda: all(a.name in self.ready or not t.is_alive() for a, t in threads))

    def run(self, arm: Arm, steps: int) -> None:
        with self.cond:
            self.turn, self.quota = arm.name, steps
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn is None)

    def wait(self, name: str, first: bool = False) -> None:
        with self.cond:
            if first:
                self.ready.add(name)
                self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn == name)

    def release(self) -> None:
        with self.cond:
            self.turn = None
            self.cond.notify_all()


class Meter:
    """Per-arm step bookkeeping, called by each arm's loop after every optimizer step."""

    def __init__(self, arm: Arm, sched: Scheduler, load: LoadSampler):
        self.arm, self.sched, self.load = arm, sched, load
        self.done = 0
        self.in_turn = 0
        self.mark = 0.0

    def start(self) -> None:
        self.sched.wait(self.arm.name, first=True)
        self.mark = time.perf_counter()

    def step(self, tokens: int, rows: int, loss: float) -> None:
        import torch

        now = time.perf_counter()
        self.done += 1
        self.arm.threads_seen.add(torch.get_num_threads())
        if self.done > self.arm.warmup:
            self.arm.times.append(now - self.mark)
            self.arm.tokens.append(tokens)
            self.arm.rows.append(rows)
        self.arm.losses.append(loss)
        self.load.sample()
        log(f"{self.arm.name}: step {self.done}/{self.arm.total_steps} {now - self.mark:.1f}s {tokens} tokens "
            f"loss {loss:.3f} rss {rss_gb():.1f} GB")
        self.in_turn += 1
        if self.done >= self.arm.total_steps:
            raise Stop
        if self.in_turn >= self.sched.quota:
            self.in_turn = 0
            self.sched.release()
            self.sched.wait(self.arm.name)
        self.mark = time.perf_counter()


def lora_config():
    from peft import LoraConfig

    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")


def fresh_model():
    from evals.models import load_causal_lm

    import torch

    torch.manual_seed(0)
    return load_causal_lm("smollm2-135m-instruct", dtype=torch.float32, device="cpu")


# -- arms ----------------------------------------------------------------------------------------
def build_plain(arm: Arm, meter: Meter, tokenizer, messages: list[list[dict]], batch: int):
    import torch
    from peft import get_peft_model

    model = get_peft_model(fresh_model(), lora_config())
    texts = [tokenizer.apply_chat_template(m, tokenize=False) for m in messages]
    return lambda: _run_plain(meter, tokenizer, model, texts, batch)


def _run_plain(meter: Meter, tokenizer, model, texts: list[str], batch: int) -> None:
    import torch

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    model.train()
    meter.start()
    for start in range(0, len(texts), batch):
        enc = tokenizer(texts[start:start + batch], padding=True, padding_side="right", add_special_tokens=False,
                        return_tensors="pt")
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        loss = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        meter.step(int(enc["attention_mask"].sum()), len(enc["input_ids"]), loss.item())


def build_project(arm: Arm, meter: Meter, tokenizer, examples, labels, batch: int):
    from peft import get_peft_model

    import optimizer.recipes.sft as sft
    from evals.classify import LabelScorer, PromptTemplate
    from optimizer.recipes.answers import answer_rows, collate
    from optimizer.recipes.loop import Schedule

    model = get_peft_model(fresh_model(), lora_config())
    scorer = LabelScorer(model, tokenizer, PromptTemplate(INSTRUCTION, tuple(labels), list_labels=False),
                         max_prompt_tokens=192)
    rows = answer_rows(scorer, examples)
    seen: list = []

    def counting_collate(batch_rows, pad_id, device):  # bench-side wrapper: records the batch's real tokens
        tensors = collate(batch_rows, pad_id, device)
        seen.append((tensors.tokens, len(batch_rows)))
        return tensors

    sft.collate = counting_collate  # train_sft looks collate up in its module at call time

    def run():
        meter.start()
        sft.train_sft(model, rows, pad_id=tokenizer.pad_token_id, batch_size=batch, seed=0,
                      schedule=Schedule(learning_rate=2e-4, epochs=1, fail_if_stuck=False),
                      on_step=lambda step, loss: meter.step(*seen[step - 1], loss))

    return run


def strip_metrics(trainer) -> None:
    """Re-patch the fused LM head to compute log-probs only (no entropy / top-1 passes), filling
    the fields SFTTrainer logs with zeros. A bench-only probe of what the metrics cost."""
    import torch
    from trl.trainer.utils import add_fused_lm_head

    base = trainer.model.get_base_model()
    add_fused_lm_head(base, outputs=("log_probs",))
    fused = base.forward

    def forward(*args, **kwargs):
        out = fused(*args, **kwargs)
        if kwargs.get("fused_lm_head"):
            zeros = torch.zeros_like(out.log_probs).detach()
            out.entropy, out.is_top1 = zeros, zeros.bool()
        return out

    base.forward = forward


def build_trl(arm: Arm, meter: Meter, tokenizer, messages: list[list[dict]], batch: int, *, overrides: dict,
              nometrics: bool, out_dir: Path):
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    dataset = Dataset.from_list([{"prompt": m[:-1], "completion": m[-1:]} for m in messages])
    holder: dict = {}

    class Timing(TrainerCallback):
        def __init__(self):
            self.tokens = 0

        def on_step_end(self, args, state, control, **kwargs):
            trainer = holder["trainer"]
            total = trainer._total_train_tokens
            tokens, self.tokens = total - self.tokens, total
            try:
                meter.step(int(tokens), batch, float("nan"))  # the loss is logged every 10 steps only
            except Stop:
                control.should_training_stop = True

    config = SFTConfig(output_dir=str(out_dir / arm.name), per_device_train_batch_size=batch,
                       max_steps=arm.total_steps, report_to="none", save_strategy="no",
                       train_sampling_strategy="sequential", disable_tqdm=True, seed=0,
                       # use_cpu: without it the defaults stop on a CPU-only machine ("Your setup doesn't
                       # support bf16/gpu. You need to assign use_cpu ..."); it changes nothing else here.
                       use_cpu=True, **overrides)
    trainer = SFTTrainer(model=fresh_model(), args=config, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=lora_config(), callbacks=[Timing()])
    holder["trainer"] = trainer
    if nometrics:
        strip_metrics(trainer)
    arm.description += f" [accelerate mixed_precision={trainer.accelerator.mixed_precision}, " \
                       f"gradient_checkpointing={trainer.args.gradient_checkpointing}]"

    def run():
        meter.start()
        trainer.train()

    return run


# -- LM head micro-benchmark ----------------------------------------------------------------------
def lm_head_micro(tokenizer, messages, examples, labels, batch: int, reps: int) -> dict:
    """Forward + backward of the output layer and loss alone, on real step shapes, interleaved:
    what each recipe pays for the full-vocabulary projection (the LM head is frozen under LoRA, so
    only the hidden-state gradient flows)."""
    import torch
    from trl.kernels import ChunkedLogProbFunction

    from evals.classify import label_token_ids

    model = fresh_model()
    weight = model.get_output_embeddings().weight.detach()
    vocab, hidden = weight.shape
    texts = [tokenizer.apply_chat_template(m, tokenize=False) for m in messages[:batch]]
    enc = tokenizer(texts, padding=True, padding_side="right", add_special_tokens=False, return_tensors="pt")
    n_all = enc["input_ids"].numel()  # TRL on CPU scores every position (its compact path needs Triton)
    keep = max(len(t) for t in label_token_ids(tokenizer, labels).values()) + 1
    n_keep = batch * keep
    g = torch.Generator().manual_seed(0)
    h_all = torch.randn(n_all, hidden, generator=g)
    h_keep = torch.randn(n_keep, hidden, generator=g)
    t_all = enc["input_ids"].reshape(-1)
    t_keep = torch.randint(0, vocab, (n_keep,), generator=g)

    def plain():
        h = h_all.clone().requires_grad_()
        loss = torch.nn.functional.cross_entropy(h @ weight.t(), t_all)
        loss.backward()

    def trl(outputs):
        def run():
            h = h_all.clone().requires_grad_()
            logp = ChunkedLogProbFunction.apply(h, weight, None, t_all, 1.0, 32768, None, 1.0, outputs)[0]
            (-logp.mean()).backward()
        return run

    def project():
        h = h_keep.clone().requires_grad_()
        logp = (h @ weight.t()).float().log_softmax(-1).gather(-1, t_keep[:, None])
        (-logp.mean()).backward()

    variants = {
        "plain: full logits at all positions + cross-entropy": plain,
        "TRL fused head, CPU path (all positions) + entropy + top-1 (default)": trl(("log_probs", "entropy", "is_top1")),
        "TRL fused head, CPU path, log-probs only": trl(("log_probs",)),
        "project: logits_to_keep (answer positions only)": project,
    }
    times = {name: [] for name in variants}
    for fn in variants.values():
        fn()  # warm-up
    for _ in range(reps):
        for name, fn in variants.items():
            began = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - began)
    med = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    base = med["plain: full logits at all positions + cross-entropy"]
    return {"positions_all": n_all, "positions_project": n_keep, "vocab": vocab, "reps": reps,
            "median_seconds": med, "ratio_to_plain": {k: v / base for k, v in med.items()},
            "all_seconds": {k: [round(x, 4) for x in v] for k, v in times.items()}}


# -- main ----------------------------------------------------------------------------------------
def main() -> None:
    import os
    import sys

    if os.environ.get("MALLOC_ARENA_MAX") is None:
        # The arms run in threads; glibc gives each thread its own malloc arena and keeps their
        # freed blocks, so six models' temporaries grew past 13 GB (OOM-killed on this 24 GB
        # machine). One shared arena keeps the footprint to what is live. Restart with it set.
        os.environ["MALLOC_ARENA_MAX"] = "1"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=None, help="Interleaved rounds of timed steps (default 2; --small 1).")
    p.add_argument("--trl-default-batch", type=int, default=4,
                   help="Batch of trl-default and its fp32 twin (bf16 on this CPU is too slow for 16 in 15 min).")
    p.add_argument("--with-nometrics", action="store_true", help="Also a whole-step trl-fixed-nometrics arm.")
    p.add_argument("--skip", default="", help="Comma-separated arms to leave out.")
    p.add_argument("--tag", default="", help="Suffix of the result file (bench/results/trial_throughput-TAG.json).")
    args = p.parse_args()
    info = setup(args.threads)
    import tempfile

    from evals.data import load_examples
    from evals.models import load_tokenizer

    batch = 4 if args.small else args.batch
    small_batch = 2 if args.small else args.trl_default_batch
    rounds = args.rounds or (1 if args.small else 2)
    fixed = {"bf16": False, "gradient_checkpointing": False}
    arms = [
        Arm("plain", "plain PEFT loop: right padding, full logits, loss on all tokens", 1, [1] * rounds, batch=batch),
        Arm("project", "optimizer.recipes.sft.train_sft: answer-only logits (logits_to_keep)", 1, [1] * rounds,
            batch=batch),
        Arm("trl-fixed", "SFTTrainer bf16=False, gradient_checkpointing=False", 1, [1] * rounds, batch=batch,
            overrides=fixed),
        Arm("trl-fp32", "SFTTrainer bf16=False (gradient checkpointing on, the default)", 1, [1] * rounds,
            batch=batch, overrides={"bf16": False}),
    ]
    if args.with_nometrics:
        arms.append(Arm("trl-fixed-nometrics", "trl-fixed, fused head without entropy/top-1 (patched)", 1,
                        [1] * rounds, batch=batch, overrides=fixed, nometrics=True))
    # trl-default and its twin: one step each, no warm-up on either side (symmetric).
    if small_batch != batch:
        arms.append(Arm(f"trl-fp32-b{small_batch}", "trl-fp32 at the trl-default batch (its twin)", 0,
                        [1] + [0] * (rounds - 1), batch=small_batch, overrides={"bf16": False}))
    arms.append(Arm(f"trl-default-b{small_batch}" if small_batch != batch else "trl-default", "SFTTrainer defaults",
                    0, [1] + [0] * (rounds - 1), batch=small_batch, overrides={}))
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    arms = [a for a in arms if a.name not in skip]
    needed = max(a.total_steps * a.batch for a in arms)
    every = load_examples(ROOT / "datasets/tickets/train.jsonl")
    examples = every[:needed]
    raw = [json.loads(line) for line in (ROOT / "datasets/tickets/train.jsonl").read_text().splitlines() if line]
    messages = [r["messages"] for r in raw][:needed]
    labels = sorted({e.label for e in every})
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    out_dir = Path(tempfile.mkdtemp(prefix="roitune-bench-trl-"))

    sched, load = Scheduler(), LoadSampler()
    load.sample()

    def start_arm(arm: Arm) -> threading.Thread:
        """Build the arm here (transformers' loading is not thread-safe), then drive it from a thread."""
        meter = Meter(arm, sched, load)
        n = arm.total_steps * arm.batch
        if arm.name == "plain":
            target, kwargs = build_plain, dict(tokenizer=tokenizer, messages=messages[:n], batch=arm.batch)
        elif arm.name == "project":
            target, kwargs = build_project, dict(tokenizer=tokenizer, examples=examples[:n], labels=labels,
                                                 batch=arm.batch)
        else:
            target, kwargs = build_trl, dict(tokenizer=tokenizer, messages=messages[:n], batch=arm.batch,
                                             overrides=arm.overrides, nometrics=arm.nometrics, out_dir=out_dir)
        log(f"building {arm.name}")
        try:
            run = target(arm, meter, **kwargs)
        except Exception as error:  # noqa: BLE001 - reported in the table
            arm.error = f"{type(error).__name__}: {error}"[:300]
            run = None

        def body():
            try:
                if run is not None:
                    run()
            except Stop:
                pass
            except BaseException as error:  # noqa: BLE001 - reported in the table
                import traceback

                traceback.print_exc()
                arm.error = f"{type(error).__name__}: {error}"[:300]
            finally:
                with sched.cond:
                    sched.ready.add(arm.name)
                sched.release()

        thread = threading.Thread(target=body, name=arm.name, daemon=True)
        thread.start()
        sched.wait_ready([(arm, thread)])
        return thread

    def finish(arm: Arm, thread: threading.Thread) -> None:
        if thread.is_alive():  # let it finish (trainer teardown) before anything else is measured
            sched.run(arm, 1)
            thread.join(timeout=600)

    import gc

    started = time.perf_counter()
    # Phase 1: trl-default and its fp32 twin, one step each, adjacent; then freed (memory).
    small_arms = [a for a in arms if a.name.startswith(("trl-default", "trl-fp32-b"))]
    for arm in small_arms:
        thread = start_arm(arm)
        log(f"{arm.name} x{arm.warmup + arm.per_round[0]}")
        sched.run(arm, arm.warmup + arm.per_round[0])
        finish(arm, thread)
        del thread
        gc.collect()
    # Phase 2: the batch arms, built once, interleaved round by round.
    main_arms = [a for a in arms if a not in small_arms]
    threads = [(arm, start_arm(arm)) for arm in main_arms]
    log("all arms ready")
    for r in range(rounds):
        for arm, thread in threads:
            quota = (arm.warmup if r == 0 else 0) + arm.per_round[r]
            if quota and thread.is_alive():
                log(f"round {r + 1}: {arm.name} x{quota}")
                sched.run(arm, quota)
    for arm, thread in threads:
        finish(arm, thread)
    wall = time.perf_counter() - started

    log("LM head micro-benchmark")
    micro = lm_head_micro(tokenizer, messages, examples, labels, batch, reps=2 if args.small else 3)

    def rate(arm: Arm, what: str) -> float | None:
        seconds = sum(arm.times)
        return (sum(arm.tokens if what == "tokens" else arm.rows) / seconds) if seconds else None

    by = {a.name: a for a in arms}
    base = by.get("plain")
    rows, results = [], []
    for arm in arms:
        tps, rps = rate(arm, "tokens"), rate(arm, "rows")
        entry = {"arm": arm.name, "description": arm.description, "batch": arm.batch, "timed_steps": len(arm.times),
                 "step_seconds": [round(t, 2) for t in arm.times], "tokens_per_step": arm.tokens,
                 "tokens_per_second": tps, "rows_per_second": rps, "error": arm.error,
                 "torch_threads_seen": sorted(arm.threads_seen), "losses": arm.losses}
        if base and rate(base, "tokens") and tps:
            entry["ratio_tokens_per_s_vs_plain"] = tps / rate(base, "tokens")
            entry["ratio_rows_per_s_vs_plain"] = rps / rate(base, "rows")
        results.append(entry)
        rows.append([arm.name, arm.batch, len(arm.times), f"{sum(arm.times) / len(arm.times):.1f}" if arm.times else "-",
                     f"{sum(arm.tokens) / len(arm.times):.0f}" if arm.times else "-",
                     f"{tps:.1f}" if tps else "-", f"{rps:.3f}" if rps else "-",
                     f"{entry['ratio_tokens_per_s_vs_plain']:.2f}x" if "ratio_tokens_per_s_vs_plain" in entry else "-",
                     f"{entry['ratio_rows_per_s_vs_plain']:.2f}x" if "ratio_rows_per_s_vs_plain" in entry else "-",
                     arm.error or ""])

    def effect(slow: str, fast: str) -> float | None:
        a, b = by.get(slow), by.get(fast)
        ra, rb = (rate(a, "rows") if a else None), (rate(b, "rows") if b else None)
        return rb / ra if ra and rb else None

    twin = f"trl-fp32-b{small_batch}" if small_batch != batch else "trl-fp32"
    default = f"trl-default-b{small_batch}" if small_batch != batch else "trl-default"
    bf16 = effect(default, twin)
    derived = None
    if small_batch != batch and bf16 and base and rate(base, "rows") and by.get("trl-fp32") and rate(by["trl-fp32"], "rows"):
        # trl-default at the main batch, derived: trl-fp32 (measured at that batch) slowed by the
        # bf16 factor measured at the small batch.
        derived = rate(by["trl-fp32"], "rows") / bf16 / rate(base, "rows")
        rows.append([f"trl-default (derived for batch {batch})", batch, "-", "-", "-", "-",
                     f"{derived * rate(base, 'rows'):.3f}", "-", f"{derived:.3f}x",
                     f"trl-fp32 at {batch} / bf16 factor at {small_batch}"])
    text = table(["arm", "batch", "timed steps", "s/step (noisy)", "tokens/step", "tokens/s (noisy)",
                  "rows/s (noisy)", "tokens/s vs plain", "rows/s vs plain", "note"], rows,
                 title=f"Training throughput, SmolLM2-135M fp32 LoRA r16 all-linear, "
                       f"{args.threads} torch thread(s), {rounds} interleaved round(s)")
    effects = {
        f"bf16 mixed precision on this CPU ({default} vs {twin}, batch {small_batch})": bf16,
        "gradient checkpointing (trl-fp32 vs trl-fixed)": effect("trl-fp32", "trl-fixed"),
        "all TRL defaults together (trl-default vs trl-fixed, derived)":
            (bf16 * effect("trl-fp32", "trl-fixed")) if bf16 and effect("trl-fp32", "trl-fixed") else None,
        "project loop vs fixed TRL (trl-fixed vs project)": effect("trl-fixed", "project"),
        "project loop vs plain loop (plain vs project)": effect("plain", "project"),
    }
    if args.with_nometrics:
        effects["entropy + token-accuracy metrics, whole step (trl-fixed vs trl-fixed-nometrics)"] = \
            effect("trl-fixed", "trl-fixed-nometrics")
    effect_text = table(["what", "speed-up when removed (rows/s ratio, same run)"],
                        [[k, f"{v:.2f}x" if v else "-"] for k, v in effects.items()],
                        title="What each TRL default costs (and what the project loop saves)")
    micro_text = table(["output layer + loss, forward + backward", "median s (noisy)", "vs plain"],
                       [[k, f"{v:.3f}", f"{micro['ratio_to_plain'][k]:.2f}x"] for k, v in micro["median_seconds"].items()],
                       title=f"LM head alone: {micro['positions_all']} positions (batch {batch}, padded) vs "
                             f"{micro['positions_project']} answer positions, vocabulary {micro['vocab']}, "
                             f"median of {micro['reps']} interleaved reps")
    info["load_average_during"] = load.summary()
    write_result("trial_throughput" + (f"-{args.tag}" if args.tag else ""), {"machine": info, "batch": batch, "trl_default_batch": small_batch,
                                      "rounds": rounds, "wall_seconds": wall, "arms": results, "effects": effects,
                                      "trl_default_vs_plain_derived": derived, "lm_head_micro": micro,
                                      "table": text, "effects_table": effect_text, "micro_table": micro_text},
                 args.small)


if __name__ == "__main__":
    main()
