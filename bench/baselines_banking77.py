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

Quality: accuracy with its Wilson 95% interval, macro-F1 with a 95% percentile-bootstrap interval
(1,000 resamples), from ``evals.metrics.score`` through each baseline's ``CandidateRecord``
(``record.test``). Speed: items/s from ``evals.meter.metered`` (serving batch 16, first batch
excluded, and its floor of timed work: at least 64 items, 3 batches and 2 s, re-timing passes over
the same items when the scored ones are fewer), $/item at the cpu-2core price of ``evals.cost``.
All on one torch thread (``--threads``). The LLM arms alternate slice by slice (zero-shot,
few-shot, zero-shot, ...; 16 items a slice), each slice scored and metered by the project's
``llm_baseline``, so their items/s ratio is measured under the same load; an arm's items/s is its
slices' timed items over their timed seconds (``record.meter``), priced once from that.

Run: .venv/bin/python bench/baselines_banking77.py [--small] [--llm-items N]
"""

from __future__ import annotations

import time

from _common import (BANKING77, BANKING77_CITATION, LoadSampler, hardware_price, load_banking77, log,
                     memoise_embeddings, parser, per_class, setup, table, write_result)
from evals.formatting import interval, money, pct

INSTRUCTION = "Route the customer support ticket to exactly one category."
HARDWARE = "cpu-2core"


def interval_cell(ci) -> str:
    return interval(ci) or "-"


def split_fields(result) -> dict:
    """A SplitResult's (or Scores') headline figures, JSON-friendly."""
    return {"n": result.n, "accuracy": result.accuracy, "accuracy_ci": list(result.accuracy_ci),
            "macro_f1": result.macro_f1, "macro_f1_ci": list(result.macro_f1_ci)}


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--llm-items", type=int, default=24, help="Test items for zero-/few-shot (one per intent, "
                                                              "cycling through intents; default 24).")
    p.add_argument("--k", type=int, default=4, help="Few-shot examples per prompt (nearest neighbours).")
    args = p.parse_args()
    info = setup(args.threads)

    from dataclasses import asdict, replace

    from evals.baselines import Pricing, ShotPicker, classical, embedding, llm_baseline
    from evals.classify import LabelScorer, PromptTemplate
    from evals.data import HeldOut, stratified_split
    from evals.meter import Machine, Throughput
    from evals.metrics import mcnemar, score
    from evals.models import load_causal_lm, load_tokenizer
    from evals.record import MeterStats, SplitResult

    memoise_embeddings(min_texts=1001)  # the embedding baseline and the retriever embed the same train queries
    load = LoadSampler()
    hardware = hardware_price()
    pricing = Pricing(hardware, HARDWARE)
    examples, labels = load_banking77()
    train, test = stratified_split(examples, [0.2], 0)
    if args.small:
        train, test = per_class(train, 10), per_class(test, 2)
    llm_n = 4 if args.small else args.llm_items
    llm_items = per_class(test, -(-llm_n // len(labels)), shuffle_labels=True)[:llm_n]
    index_of = {id(e): i for i, e in enumerate(test)}
    llm_index = [index_of[id(e)] for e in llm_items]
    log(f"Banking77: {len(train)} train / {len(test)} test, {len(labels)} labels; LLM subset {len(llm_items)}")

    # This benchmark has no validation split: every arm is scored on test only (record.test).
    whole_test = [HeldOut("test", test, None, len(test))]

    def on_start(name: str, total: int):
        log(f"{name}: {total} items")
        return None

    common = dict(seed=0, on_start=on_start)
    records, timings = {}, {}
    began = time.perf_counter()
    records["classical"] = classical(train, whole_test, labels, pricing, batch_size=16, **common)
    timings["classical"] = time.perf_counter() - began
    load.sample()
    log(f"classical {records['classical'].test.accuracy:.3f} in {timings['classical']:.0f}s")
    began = time.perf_counter()
    records["embedding"] = embedding(train, whole_test, labels, pricing, encoder_name="minilm-l6", batch_size=16,
                                     **common)
    timings["embedding"] = time.perf_counter() - began
    load.sample()
    log(f"embedding {records['embedding'].test.accuracy:.3f} in {timings['embedding']:.0f}s")

    began = time.perf_counter()
    picker = ShotPicker(train, "nearest", encoder_name="minilm-l6", seed=0)
    chosen = dict(zip(map(id, llm_items), picker.pick([e.text for e in llm_items], args.k)))
    timings["few-shot retrieval index"] = time.perf_counter() - began
    template = PromptTemplate(INSTRUCTION, tuple(labels), list_labels=True)
    scorer = LabelScorer(load_causal_lm("smollm2-135m-instruct"), load_tokenizer("smollm2-135m-instruct"), template)

    # Zero- and few-shot alternate in slices (zero, few, zero, few, ...), each slice scored and
    # metered by the project's llm_baseline, so both see the same load; the slices are combined.
    few_name = f"few-shot-k{args.k}-nearest"
    slice_size = 16
    slices: dict[str, list] = {"zero-shot": [], few_name: []}
    for start in range(0, len(llm_items), slice_size):
        part = [HeldOut("test", llm_items[start:start + slice_size], llm_index[start:start + slice_size], len(test))]
        for name in slices:
            few = name == few_name
            t0 = time.perf_counter()
            r = llm_baseline(name, scorer, part, labels, pricing, batch_size=8 if few else 16,
                             shots=(lambda items: [chosen[id(e)] for e in items]) if few else None, **common)
            slices[name].append((r, time.perf_counter() - t0))
            load.sample()
            log(f"{name} items {start}-{start + len(part[0].items)}: {r.items_per_second:.3f} items/s "
                f"({r.meter.timed_items} items timed in {r.meter.seconds:.1f}s)")
    gold_subset = [test[i].label for i in llm_index]
    for name, chunks in slices.items():
        predicted, top = {}, {}
        for r, _ in chunks:
            predicted.update(r.test.predicted_labels(labels))
            if r.test.top_labels is not None:
                top.update(zip(r.test.item_indices(), zip(r.test.top_labels, r.test.top_probs)))
        predictions = [predicted[i] for i in llm_index]
        scores = score(gold_subset, predictions, labels, seed=0)
        merged = SplitResult.of(scores, predictions, labels, llm_index)
        if len(top) == len(llm_index):  # the slices' top label probabilities, in llm_index order
            merged = replace(merged, top_labels=[top[i][0] for i in llm_index], top_probs=[top[i][1] for i in llm_index])
        stats = [r.meter for r, _ in chunks]
        meter = MeterStats(timed_items=sum(m.timed_items for m in stats), timed_batches=sum(m.timed_batches for m in stats),
                           seconds=round(sum(m.seconds for m in stats), 4), batch_size=stats[0].batch_size,
                           slowest=min(m.slowest for m in stats), fastest=max(m.fastest for m in stats))
        first = chunks[0][0]
        throughput = Throughput(meter.timed_items / meter.seconds, meter,
                                Machine(first.measured_on, first.measured_hardware))
        cost = throughput.cost_per_item(hardware, HARDWARE)
        tokens = sum(r.tokens_per_item * r.test.n for r, _ in chunks) / len(llm_items)
        records[name] = replace(first, test=merged,
                                items_per_second=throughput.items_per_second, meter=meter, tokens_per_item=tokens,
                                cost_per_item=cost.value, cost_provenance=cost.provenance.value,
                                cost_source=cost.source, compute_seconds=sum(r.compute_seconds for r, _ in chunks),
                                compute_dollars=sum(r.compute_dollars for r, _ in chunks))
        timings[name] = sum(t for _, t in chunks)

    # Scores on the LLM subset, for every arm (classical and embedding were scored on all of test).
    rows, payload = [], []
    predicted = {name: r.test.predicted_labels(labels) for name, r in records.items()}  # test index -> label
    subset_predictions = {name: [predicted[name][i] for i in llm_index] for name in records}
    for name, r in records.items():
        full = name in ("classical", "embedding")
        on_subset = score(gold_subset, subset_predictions[name], labels) if full else r.test
        test_ = mcnemar(gold_subset, subset_predictions["classical"], subset_predictions[name]) \
            if name != "classical" else None
        rows.append([name, r.test.n, pct(r.test.accuracy), interval_cell(r.test.accuracy_ci), pct(r.test.macro_f1),
                     interval_cell(r.test.macro_f1_ci), on_subset.n, pct(on_subset.accuracy),
                     interval_cell(on_subset.accuracy_ci), f"{test_.p_value:.2g}" if test_ else "-",
                     f"{r.items_per_second:.3g}", money(r.cost_per_item),
                     f"{r.tokens_per_item:.0f}" if r.tokens_per_item else "-", f"{timings[name]:.0f}"])
        payload.append({"name": name, "scores": split_fields(r.test), "subset_scores": split_fields(on_subset),
                        "mcnemar_vs_classical_on_subset": None if test_ is None else vars(test_),
                        "items_per_second": r.items_per_second, "meter": asdict(r.meter),
                        "measured_on": r.measured_on, "cost_per_item": r.cost_per_item,
                        "cost_provenance": r.cost_provenance, "cost_source": r.cost_source,
                        "tokens_per_item": r.tokens_per_item, "seconds": timings[name]})
    text = table(["baseline", "n", "accuracy", "95% CI", "macro-F1", "95% CI", "n (LLM subset)", "accuracy on subset",
                  "95% CI", "McNemar p vs classical (subset)", "items/s (noisy)", f"$/item ({HARDWARE})",
                  "prompt tokens/item", "wall s"], rows,
                 title=f"Banking77 ladder: {len(train)} train / {len(test)} test (stratified 20%, seed 0); "
                       f"LLM subset {len(llm_items)} items; {args.threads} torch thread(s)")
    zero, few = records["zero-shot"], records[few_name]
    ratio = {"few-shot items/s / zero-shot items/s (alternating slices)": few.items_per_second / zero.items_per_second,
             "classical items/s / zero-shot items/s": records["classical"].items_per_second / zero.items_per_second}
    for k, v in ratio.items():
        print(f"{k}: {v:.3g}")
    info["load_average_during"] = load.summary()
    write_result("baselines_banking77", {
        "machine": info, "data": {"path": str(BANKING77), "citation": BANKING77_CITATION, "train": len(train),
                                  "test": len(test), "labels": len(labels), "llm_items": len(llm_items),
                                  "split": "evals.data.stratified_split(examples, [0.2], seed=0)",
                                  "llm_subset": "one item per intent (cycling), intents in a seeded random order (seed 0)"},
        "hardware": {"name": HARDWARE, "value": hardware.value, "source": hardware.source}, "results": payload,
        "ratios": ratio, "table": text}, args.small)


if __name__ == "__main__":
    main()
