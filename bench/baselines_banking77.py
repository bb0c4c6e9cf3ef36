#!/usr/bin/env python3
"""The baseline ladder on Banking77 (real customer-support queries, 77 intents), on CPU.

Data: Banking77's train.csv (10,003 queries; CC-BY-4.0, Casanueva et al. 2020), read in place
from ../shared/data/banking77/ (``ROITUNE_BANKING77`` overrides the path). Its official test
split is not on this machine, so a stratified 20% is held out as test with
``evals.data.stratified_split(seed=0)`` (8,005 train / 1,998 test).

- classical (TF-IDF word + char n-grams, logistic regression) and embedding (MiniLM-L6 +
  logistic regression) train on all 8,002 train rows and are scored on all 2,001 test rows;
- zero-shot and few-shot (k=4 nearest neighbours by MiniLM embedding, RAG-style) prompt the
  bundled SmolLM2-135M-Instruct with the 77-label list, label-constrained
  (``evals.classify.LabelScorer``); they are scored on a label-balanced subset of test
  (``--llm-items``, default 24 = one query from each of 24 intents drawn at random: each item costs ~15-30 s on
  this shared CPU, because every prompt carries the ~560-token label list), and classical / embedding
  are reported on the same subset too, with a paired McNemar test against classical.

Quality: accuracy and macro-F1 with 95% percentile-bootstrap intervals (1,000 resamples,
``evals.metrics.score``). Speed: items/s from ``evals.meter.metered`` (serving batch 16,
first batch excluded), $/item at the cpu-2core price of ``evals.cost``. All on one torch
thread (``--threads``). The LLM arms alternate batch by batch (zero-shot, few-shot, zero-shot,
...) so their items/s ratio is measured under the same load.

Run: .venv/bin/python bench/baselines_banking77.py [--small] [--llm-items N]
"""

from __future__ import annotations

import time

from _common import (BANKING77, BANKING77_CITATION, LoadSampler, ci, dollars, hardware_price, load_banking77, log,
                     memoise_embeddings, parser, pct, per_class, setup, table, write_result)

INSTRUCTION = "Route the customer support ticket to exactly one category."


def subset_scores(result, indices, labels):
    from evals.metrics import score

    items = [result.items[i] for i in indices]
    preds = [result.predictions[i] for i in indices]
    return score([e.label for e in items], preds, labels)


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--llm-items", type=int, default=24, help="Test items for zero-/few-shot (one per intent, "
                                                              "cycling through intents; default 24).")
    p.add_argument("--k", type=int, default=4, help="Few-shot examples per prompt (nearest neighbours).")
    args = p.parse_args()
    info = setup(args.threads)

    from evals.baselines import ShotPicker, classical, embedding, llm_baseline
    from evals.classify import LabelScorer, PromptTemplate
    from evals.data import stratified_split
    from evals.meter import Throughput
    from evals.metrics import mcnemar
    from evals.models import load_causal_lm, load_tokenizer

    memoise_embeddings(min_texts=1001)  # the embedding baseline and the retriever embed the same train queries
    load = LoadSampler()
    hardware = hardware_price()
    examples, labels = load_banking77()
    train, test = stratified_split(examples, [0.2], 0)
    if args.small:
        train, test = per_class(train, 10), per_class(test, 2)
    llm_n = 4 if args.small else args.llm_items
    llm_items = per_class(test, -(-llm_n // len(labels)), shuffle_labels=True)[:llm_n]
    index_of = {id(e): i for i, e in enumerate(test)}
    llm_index = [index_of[id(e)] for e in llm_items]
    log(f"Banking77: {len(train)} train / {len(test)} test, {len(labels)} labels; LLM subset {len(llm_items)}")

    results, timings = {}, {}
    began = time.perf_counter()
    results["classical"] = classical(train, test, labels, hardware, batch_size=16)
    timings["classical"] = time.perf_counter() - began
    load.sample()
    log(f"classical {results['classical'].scores.accuracy:.3f} in {timings['classical']:.0f}s")
    began = time.perf_counter()
    results["embedding"] = embedding(train, test, labels, hardware, encoder_name="minilm-l6", batch_size=16)
    timings["embedding"] = time.perf_counter() - began
    load.sample()
    log(f"embedding {results['embedding'].scores.accuracy:.3f} in {timings['embedding']:.0f}s")

    began = time.perf_counter()
    picker = ShotPicker(train, "nearest", encoder_name="minilm-l6", seed=0)
    shots = picker.pick([e.text for e in llm_items], args.k)
    timings["few-shot retrieval index"] = time.perf_counter() - began
    template = PromptTemplate(INSTRUCTION, tuple(labels), list_labels=True)
    scorer = LabelScorer(load_causal_lm("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct"), template)

    # Zero- and few-shot alternate in slices (zero, few, zero, few, ...), each slice metered by the
    # project's llm_baseline, so both see the same load; the slices' items/s are combined.
    slice_size = 16
    parts: dict[str, list] = {"zero-shot": [], f"few-shot-k{args.k}-nearest": []}
    for start in range(0, len(llm_items), slice_size):
        chunk = llm_items[start:start + slice_size]
        for name in parts:
            few = name.startswith("few")
            t0 = time.perf_counter()
            r = llm_baseline(name, scorer, chunk, labels, hardware, batch_size=8 if few else 16,
                             shots=shots[start:start + slice_size] if few else None)
            parts[name].append((r, time.perf_counter() - t0))
            load.sample()
            log(f"{name} items {start}-{start + len(chunk)}: {r.items_per_second:.3f} items/s")

    from evals.baselines import BaselineResult
    from evals.metrics import score

    for name, chunks in parts.items():
        predictions = [p for r, _ in chunks for p in r.predictions]
        items = [e for r, _ in chunks for e in r.items]
        # items/s over the slices: total items over total time of the metered batches (the meter
        # excludes each slice's first batch only when a slice has several batches).
        seconds = sum(len(r.items) / r.items_per_second for r, _ in chunks)
        rate = len(items) / seconds
        throughput = Throughput(rate, 8 if name.startswith('few') else 16, len(items), chunks[0][0].cost_per_item.source.split(" on ")[-1])
        tokens = sum(r.tokens_per_item * len(r.items) for r, _ in chunks) / len(items)
        results[name] = BaselineResult(name, score([e.label for e in items], predictions, labels), predictions, items,
                                       throughput.cost_per_item(hardware), rate, tokens)
        timings[name] = sum(t for _, t in chunks)

    # Scores on the LLM subset, for every arm (classical and embedding were scored on all of test).
    rows, payload = [], []
    gold_subset = [e.label for e in llm_items]
    classical_subset = [results["classical"].predictions[i] for i in llm_index]
    for name, r in results.items():
        full = name in ("classical", "embedding")
        on_subset = subset_scores(r, llm_index, labels) if full else r.scores
        preds_subset = [r.predictions[i] for i in llm_index] if full else r.predictions
        test_ = mcnemar(gold_subset, classical_subset, preds_subset) if name != "classical" else None
        rows.append([name, r.scores.n, pct(r.scores.accuracy), ci(r.scores.accuracy_ci), pct(r.scores.macro_f1),
                     ci(r.scores.macro_f1_ci), on_subset.n, pct(on_subset.accuracy), ci(on_subset.accuracy_ci),
                     f"{test_.p_value:.2g}" if test_ else "-",
                     f"{r.items_per_second:.3g}", dollars(r.cost_per_item.value),
                     f"{r.tokens_per_item:.0f}" if r.tokens_per_item else "-", f"{timings[name]:.0f}"])
        payload.append({"name": name, "scores": r.scores.to_dict() | {"confusion": None, "per_class": None},
                        "subset_scores": {"n": on_subset.n, "accuracy": on_subset.accuracy,
                                          "accuracy_ci": on_subset.accuracy_ci, "macro_f1": on_subset.macro_f1},
                        "mcnemar_vs_classical_on_subset": None if test_ is None else vars(test_),
                        "items_per_second": r.items_per_second, "cost_per_item": r.cost_per_item.value,
                        "cost_source": r.cost_per_item.source, "tokens_per_item": r.tokens_per_item,
                        "seconds": timings[name]})
    text = table(["baseline", "n", "accuracy", "95% CI", "macro-F1", "95% CI", "n (LLM subset)", "accuracy on subset",
                  "95% CI", "McNemar p vs classical (subset)", "items/s (noisy)", "$/item (cpu-2core)",
                  "prompt tokens/item", "wall s"], rows,
                 title=f"Banking77 ladder: {len(train)} train / {len(test)} test (stratified 20%, seed 0); "
                       f"LLM subset {len(llm_items)} items; {args.threads} torch thread(s)")
    zero, few = results["zero-shot"], results[f"few-shot-k{args.k}-nearest"]
    ratio = {"few-shot items/s / zero-shot items/s (alternating slices)": few.items_per_second / zero.items_per_second,
             "classical items/s / zero-shot items/s": results["classical"].items_per_second / zero.items_per_second}
    for k, v in ratio.items():
        print(f"{k}: {v:.3g}")
    info["load_average_during"] = load.summary()
    write_result("baselines_banking77", {
        "machine": info, "data": {"path": str(BANKING77), "citation": BANKING77_CITATION, "train": len(train),
                                  "test": len(test), "labels": len(labels), "llm_items": len(llm_items),
                                  "split": "evals.data.stratified_split(examples, [0.2], seed=0)",
                                  "llm_subset": "one item per intent (cycling), intents in a seeded random order (seed 0)"},
        "hardware": {"value": hardware.value, "source": hardware.source}, "results": payload, "ratios": ratio,
        "table": text}, args.small)


if __name__ == "__main__":
    main()
