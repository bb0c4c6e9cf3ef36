#!/usr/bin/env python3
"""Label-constrained scoring vs free generation + parsing, same model, same prompts, on CPU.

SmolLM2-135M-Instruct (bundled), the label list in the system prompt, the same token ids for
both arms (``LabelScorer.prompt_ids``):

  constrained  ``evals.classify.LabelScorer.predict_ids`` on each batch: the prompt start the
               batch's items share (system prompt, label list) runs once per batch, then one
               forward over each item's own tokens and the label tree (tree attention), with
               logits at the branching points only. The answer is always a label.
  generate     ``model.generate(max_new_tokens=12, do_sample=False)`` on the same left-padded
               batch, then parsing: the decoded reply is a label if it equals one exactly, or
               after normalising (lower case, spaces/hyphens to underscores, surrounding quotes,
               punctuation and a leading "category:" removed); anything else is invalid (wrong).

Two label sets, because the trie's shape decides the constrained arm's cost:
  banking77  77 intents (names share prefixes: card_..., top_up_...; 17 branching points, up
             to 8 tokens deep), ``--items`` test queries (default 48, one per intent drawn at
             random) from the same stratified 20% test split as bench/baselines_banking77.py;
  tickets    the 40 demo categories (every label starts with a distinct token: one forward),
             ``--items`` rows of datasets/tickets/test.jsonl (one per category, cycling);
  tickets-nolist  the same items with the prompt a fine-tuned adapter is served with (the
             instruction only, no label list; ``search.list_labels_in_prompt: false``): the
             serving case. The base model cannot know the labels there, so only its speed and
             validity mean something.

A third timing, ``prompt forward only`` (each whole prompt through the model once, logits at its
last position, no answer and no sharing), is the floor of any method that runs every prompt in
full: what sharing the prompt start saves shows as constrained being faster than it.

Arms alternate batch by batch (constrained, generate, constrained, ...) at batch 8 after one
untimed warm-up batch each, so their ratio is measured under the same load.

Run: .venv/bin/python bench/constrained_vs_generate.py [--small] [--items N]
"""

from __future__ import annotations

import re
import time

from _common import ROOT, LoadSampler, hardware_price, load_banking77, log, parser, per_class, setup, table, write_result
from evals.formatting import interval, money, pct

INSTRUCTION = "Route the customer support ticket to exactly one category."


def normalise(text: str) -> str:
    text = text.strip().lower()
    text = re.sub(r"^(category|label|answer)\s*:\s*", "", text)
    text = text.strip(" \t\n\"'`*.!,;:")
    return re.sub(r"[\s\-]+", "_", text)


def parse(reply: str, labels: list[str]) -> tuple[str | None, str]:
    """(label or None, how): exact, normalised, or invalid."""
    first = reply.strip().splitlines()[0] if reply.strip() else ""
    if first in labels:
        return first, "exact"
    by_norm = {normalise(label): label for label in labels}
    key = normalise(first)
    if key in by_norm:
        return by_norm[key], "normalised"
    return None, "invalid"


def run_task(name: str, items, labels, model, tokenizer, *, batch: int, load: LoadSampler,
             list_labels: bool = True) -> dict:
    import torch

    from evals.classify import LabelScorer, PromptTemplate, _shared_length
    from evals.metrics import score

    scorer = LabelScorer(model, tokenizer, PromptTemplate(INSTRUCTION, tuple(labels), list_labels=list_labels))
    prompts = [scorer.prompt_ids(e.text) for e in items]
    pad = tokenizer.pad_token_id

    def constrained(chunk):
        return [p.label for p in scorer.predict_ids(chunk, batch_size=len(chunk))]

    def left_padded(chunk):
        """(ids, mask) of a batch whose prompts all end in the last column, as both arms serve."""
        width = max(len(p) for p in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, p in enumerate(chunk):
            ids[row, width - len(p):] = torch.tensor(p)
            mask[row, width - len(p):] = 1
        return ids, mask

    def prompt_only(chunk):
        """Every whole prompt through the model once, last-position logits only: what scoring
        costs without sharing the prompt start, before any label token."""
        ids, mask = left_padded(chunk)
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                  use_cache=False, logits_to_keep=1)
        return [None] * len(chunk)

    def generate(chunk):
        ids, mask = left_padded(chunk)
        width = ids.shape[1]
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, do_sample=False,
                                 pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
        return [tokenizer.decode(row[width:], skip_special_tokens=True) for row in out]

    # one untimed warm-up batch each (a few short prompts), then alternate timed batches
    warm = sorted(prompts, key=len)[:2]
    constrained(warm)
    generate(warm)
    prompt_only(warm)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths per batch, as both would serve
    arms = [("constrained", constrained), ("generate", generate), ("prompt forward only", prompt_only)]
    seconds = {name: 0.0 for name, _ in arms}
    preds: dict[str, dict[int, object]] = {name: {} for name, _ in arms}
    for start in range(0, len(order), batch):
        chunk_ids = order[start:start + batch]
        chunk = [prompts[i] for i in chunk_ids]
        for arm, fn in arms:
            began = time.perf_counter()
            out = fn(chunk)
            seconds[arm] += time.perf_counter() - began
            preds[arm].update(zip(chunk_ids, out))
        load.sample()
        log(f"{name}: {start + len(chunk)}/{len(order)} items; constrained {seconds['constrained']:.0f}s, "
            f"generate {seconds['generate']:.0f}s")

    gold = [e.label for e in items]
    constrained_labels = [preds["constrained"][i] for i in range(len(items))]
    replies = [preds["generate"][i] for i in range(len(items))]
    parsed = [parse(r, labels) for r in replies]
    generated_labels = [p[0] for p in parsed]
    how = {k: sum(1 for _, h in parsed if h == k) for k in ("exact", "normalised", "invalid")}
    s_con, s_gen = score(gold, constrained_labels, labels), score(gold, generated_labels, labels)
    n = len(items)
    result = {
        "task": name, "items": n, "labels": len(labels), "batch": batch,
        "prompt_tokens_mean": sum(map(len, prompts)) / n,
        "trie_branching_points": len(scorer._prefixes),
        "trie_max_depth": max(len(p) for p in scorer._prefixes),
        "label_tree_tokens": len(scorer._tree),
        "shared_prompt_tokens_per_batch_mean": sum(_shared_length([prompts[i] for i in order[s:s + batch]])
                                                  for s in range(0, n, batch)) / -(-n // batch),
        "constrained": {"seconds": seconds["constrained"], "items_per_second": n / seconds["constrained"],
                        "valid_rate": 1.0, "accuracy": s_con.accuracy, "accuracy_ci": s_con.accuracy_ci},
        "generate": {"seconds": seconds["generate"], "items_per_second": n / seconds["generate"],
                     "valid_rate": (how["exact"] + how["normalised"]) / n, "parse": how,
                     "accuracy": s_gen.accuracy, "accuracy_ci": s_gen.accuracy_ci,
                     "sample_replies": [{"gold": g, "reply": r} for g, r in list(zip(gold, replies))[:12]]},
    }
    result["speed_ratio_constrained_over_generate"] = seconds["generate"] / seconds["constrained"]
    result["prompt forward only"] = {"seconds": seconds["prompt forward only"],
                                     "items_per_second": n / seconds["prompt forward only"]}
    return result


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--items", type=int, default=48, help="Items per task (default 48).")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--tasks", default="banking77,tickets,tickets-nolist")
    args = p.parse_args()
    info = setup(args.threads)

    from evals.data import load_examples, stratified_split
    from evals.models import load_causal_lm, load_tokenizer

    n = 4 if args.small else args.items
    batch = 2 if args.small else args.batch
    model, tokenizer = load_causal_lm("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct")
    load = LoadSampler()
    hardware = hardware_price()
    results = []
    for task in args.tasks.split(","):
        if task == "banking77":
            examples, labels = load_banking77()
            test = stratified_split(examples, [0.2], 0)[1]
        else:
            test = load_examples(ROOT / "datasets/tickets/test.jsonl")
            labels = sorted({e.label for e in load_examples(ROOT / "datasets/tickets/train.jsonl")})
        items = per_class(test, -(-n // len(labels)), shuffle_labels=True)[:n]
        log(f"{task}: {len(items)} items, {len(labels)} labels")
        results.append(run_task(task, items, labels, model, tokenizer, batch=batch, load=load,
                                list_labels=task != "tickets-nolist"))

    rows = []
    for r in results:
        for arm in ("constrained", "generate", "prompt forward only"):
            if arm not in r:
                continue
            a = r[arm]
            speed = r["generate"]["seconds"] / a["seconds"]
            rows.append([r["task"], arm, r["items"], f"{r['prompt_tokens_mean']:.0f}", f"{a['items_per_second']:.3f}",
                         money(hardware.value / 3600 / a['items_per_second']), f"{speed:.2f}x",
                         pct(a["valid_rate"]) if "valid_rate" in a else "-",
                         pct(a["accuracy"]) if "accuracy" in a else "-", (interval(a["accuracy_ci"]) or "-") if "accuracy" in a else "-"])
    text = table(["task", "arm", "items", "prompt tokens", "items/s (noisy)", "$/item (cpu-2core)",
                  "speed vs generate (same run)", "valid answers", "accuracy", "95% CI"], rows,
                 title=f"Constrained scoring vs generate(12 tokens) + parse, SmolLM2-135M, batch {batch}, "
                       f"{args.threads} torch thread(s)")
    for r in results:
        print(f"{r['task']}: label trie has {r['trie_branching_points']} branching point(s), max depth "
              f"{r['trie_max_depth']}, {r['label_tree_tokens']} tree tokens; shared prompt start "
              f"{r['shared_prompt_tokens_per_batch_mean']:.0f} of {r['prompt_tokens_mean']:.0f} tokens; "
              f"generate replies parsed: {r['generate']['parse']}")
    info["load_average_during"] = load.summary()
    default_tasks = p.get_default("tasks")
    name = "constrained_vs_generate" + ("" if args.tasks == default_tasks else "-" + args.tasks.replace(",", "-"))
    write_result(name, {"machine": info, "hardware": {"value": hardware.value,
                                                                          "source": hardware.source},
                                             "results": results, "table": text}, args.small)


if __name__ == "__main__":
    main()
