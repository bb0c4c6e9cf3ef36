"""``roitune export``: one sweep trial's adapter as a folder that stands on its own.

The bundle holds the PEFT adapter, the base model's tokenizer, the labels, the prompt
template, ``roitune.json`` (the ``AdapterSpec`` that ``roitune predict`` / ``serve`` rebuild
the predictor from), a model card with the trial's quality, cost and ROI, and ``SHA256SUMS``.
With ``--merge`` it also holds ``merged/``, the adapter folded into a standalone model.

Everything is written to ``<out>.partial`` and renamed into place at the end, so an
interrupted export never leaves a half-written bundle at ``--out``; a ``.partial`` folder left
by a killed export is removed by the next one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.cost import Economics
from evals.formatting import interval, money, payback_text, pct, volume_text
from evals.recommend import Ranked
from evals.record import CandidateRecord, Kind, SplitResult, read_record
from evals.report import study_report
from evals.storage import load_existing_study
from optimizer.adapters import AdapterSpec
from optimizer.config import Config

if TYPE_CHECKING:
    import optuna
    from rich.console import Console

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "roitune.json")
FULL_MODEL_FILES = ("config.json", "model.safetensors", "roitune.json")  # a fully fine-tuned model
CHECKSUMS = "SHA256SUMS"
SOURCE_FILE = "source.json"
# Hugging Face ids of the bundled models, for the card's metadata and the vLLM command
# (a bundled name means nothing outside roitune).
HUB_IDS = {
    "smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "minilm-l6": "sentence-transformers/all-MiniLM-L6-v2",
}
# vLLM accepts only these values for --max-lora-rank.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
EXAMPLE_TICKET = "I was charged twice for my subscription this month, please refund one payment."


class ExportError(ValueError):
    """A trial that cannot be exported, or an output folder in the way (one line)."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    trial: int
    spec: AdapterSpec
    rank: int
    merged: bool
    dequantized: bool  # a 4-bit adapter merged into a full-precision base
    serve_hint: str  # the vLLM command, or why vLLM cannot serve this head


# -- which trial ---------------------------------------------------------------------------


def select_trial(study: optuna.Study, which: str, economics: Economics) -> tuple[CandidateRecord, CandidateRecord | None]:
    """The record of the trial named by ``--trial`` (a number, or ``best``: see ``best_trial``), and
    the cascade when the number is one: then its local trial is exported with its threshold."""
    trial = best_trial(study, economics) if which == "best" else _numbered_trial(study, which)
    cascade = read_record(study, trial)
    if cascade.kind != Kind.cascade:
        return check_exportable(study, trial), None
    local = _numbered_trial(study, str(cascade.cascade.local_number))
    if read_record(study, local).kind != Kind.trial:
        raise ExportError(f"trial {trial.number} is {cascade.name}: its local part, {cascade.cascade.local}, is a "
                          "baseline, which has no adapter to export")
    return check_exportable(study, local), cascade


def _numbered_trial(study: optuna.Study, which: str) -> optuna.trial.FrozenTrial:
    try:
        number = int(which)
    except ValueError:
        raise ExportError(f"--trial must be a trial number or 'best', not {which!r}") from None
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is None:
        raise ExportError(f"study '{study.study_name}' has no trial {number}")
    return trial


def best_trial(study: optuna.Study, economics: Economics) -> optuna.trial.FrozenTrial:
    """The best COMPLETE sweep trial by the study's objective on validation (roi: lowest expected
    monthly cost); for a pareto study, the front member with the lowest monthly cost."""
    from optimizer.sweep import finalists

    found = finalists(study)
    if not found:
        raise ExportError(f"study '{study.study_name}' has no COMPLETE sweep trial: run `roitune sweep` first")
    if len(found) == 1:
        return found[0]
    numbers = {t.number: t for t in found}
    cheapest = next(r for r in study_report(study, economics).ranked if r.record.number in numbers)
    return numbers[cheapest.record.number]


def check_exportable(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> CandidateRecord:
    """The trial's record, when it has an adapter to export; else a one-line ExportError."""
    record = read_record(study, trial)
    if record.kind != Kind.trial:
        raise ExportError(f"trial {trial.number} is {record.name} ({record.kind.value}): "
                          "only sweep trials have an adapter to export")
    if record.state != "COMPLETE":
        reason = f" ({record.fail_reason})" if record.fail_reason else ""
        raise ExportError(f"trial {trial.number} is {record.state}{reason}: only COMPLETE trials can be exported")
    folder = Path(record.adapter_path or "")
    if not all((folder / name).is_file() for name in _weight_files(record.method == "full")):
        raise ExportError(f"trial {trial.number}: adapter folder {folder} is missing or incomplete")
    return record


# -- the bundle ----------------------------------------------------------------------------


def _weight_files(full: bool) -> tuple[str, ...]:
    return FULL_MODEL_FILES if full else ADAPTER_FILES


def adapter_rank(adapter_config: dict[str, Any]) -> int:
    """The largest LoRA rank in the adapter (per-module ranks included)."""
    return max([adapter_config["r"], *adapter_config.get("rank_pattern", {}).values()])


def vllm_max_lora_rank(rank: int) -> int | None:
    """The smallest ``--max-lora-rank`` vLLM accepts that fits ``rank`` (None: none does)."""
    return next((r for r in VLLM_LORA_RANKS if r >= rank), None)


def hub_id(base_model: str) -> str | None:
    """The base model's Hugging Face id, when it has one (a local path has none)."""
    if base_model in HUB_IDS:
        return HUB_IDS[base_model]
    return None if Path(base_model).exists() else base_model  # else it was loaded as a hub id


def serve_hint(spec: AdapterSpec, bundle: Path, rank: int) -> str:
    """How to serve the bundle with vLLM, or why not and what to use instead."""
    ours = f"roitune serve {bundle}"
    if spec.head == "classifier":
        return f"vLLM's LoRA serving does not cover a custom classification (score) head; serve it with `{ours}`"
    if spec.full:
        return f"vllm serve {bundle}  (a fully fine-tuned model: no adapter, no --max-lora-rank)"
    base, max_rank = hub_id(spec.base_model), vllm_max_lora_rank(rank)
    if base is None:
        return f"The base model {spec.base_model} has no Hugging Face id for vLLM; serve it with `{ours}`"
    if max_rank is None:
        return f"Rank {rank} exceeds vLLM's largest --max-lora-rank ({VLLM_LORA_RANKS[-1]}); serve it with `{ours}`"
    return (f"vllm serve {base} --enable-lora --lora-modules {bundle.name}={bundle} "
            f"--max-lora-rank {max_rank}")


def _copy_adapter(source: Path, target: Path, spec: AdapterSpec) -> dict[str, Any]:
    """Copy the adapter files; returns the adapter config as written (none for a full model)."""
    for name in _weight_files(spec.full):
        shutil.copy2(source / name, target / name)
    if spec.full:
        return {}
    config = json.loads((source / "adapter_config.json").read_text())
    # The trial recorded the local cache folder it trained on; point loaders elsewhere
    # (PEFT's AutoPeftModel, vLLM) at the base model's public id instead.
    base = hub_id(spec.base_model)
    if base is not None:
        config["base_model_name_or_path"] = base
        (target / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return config


def _write_template(target: Path, spec: AdapterSpec, tokenizer) -> None:
    from evals.classify import render_prompt

    template = spec.template()
    data: dict[str, Any] = {"head": spec.head, "instruction": spec.instruction,
                            "list_labels": spec.list_labels, "system_prompt": template.system_prompt()}
    if spec.head == "classifier":
        data["input"] = "the raw ticket text (a classifier head applies no chat template)"
        data["example"] = {"text": EXAMPLE_TICKET}
    else:
        messages = template.messages(EXAMPLE_TICKET)
        data["input"] = "chat messages rendered with the tokenizer's chat template; the answer is one label"
        data["example"] = {"messages": messages, "rendered": render_prompt(tokenizer, messages)}
    (target / "prompt_template.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _write_cascade_files(target: Path, record: CandidateRecord, cascade: CandidateRecord | None) -> None:
    """``calibration.json`` (how the confidence is calibrated) and, for a cascade, ``cascade.json``
    (its threshold): what ``roitune serve --escalate-to`` needs."""
    from dataclasses import asdict

    from optimizer.predict import CALIBRATION_FILE, CASCADE_FILE

    if record.calibration is not None:
        (target / CALIBRATION_FILE).write_text(json.dumps(asdict(record.calibration), indent=2) + "\n")
    if cascade is not None:
        parts = asdict(cascade.cascade)
        (target / CASCADE_FILE).write_text(json.dumps({**parts, "name": cascade.name,
                                                       "trial": cascade.number}, indent=2) + "\n")


def _write_merged(target: Path, spec: AdapterSpec, adapter_dir: Path) -> None:
    """The adapter folded into the base: a standalone model (safetensors) + tokenizer.

    A QLoRA adapter is merged into the base loaded in full precision: merging into 4-bit
    weights would round the update away, and the merged model would need bitsandbytes.
    """
    from optimizer.adapters import load_predictor

    predictor = load_predictor(replace(spec, quantization=None), adapter_dir, merge=True)
    predictor.model.save_pretrained(target, safe_serialization=True)
    predictor.tokenizer.save_pretrained(target)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` by relative path, sorted."""
    return {path.relative_to(folder).as_posix(): _sha256(path)
            for path in sorted(p for p in folder.rglob("*") if p.is_file())}


def _write_checksums(folder: Path, sums: dict[str, str]) -> None:
    """``sha256sum -c SHA256SUMS`` checks the bundle."""
    (folder / CHECKSUMS).write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items())))


def _write_card(folder: Path, text: str) -> None:
    (folder / "README.md").write_text(text, encoding="utf-8")


def _publish(staging: Path, out: Path, *, force: bool) -> None:
    """Move the finished bundle to ``out``, replacing what is there only with ``force``."""
    if not out.exists():
        staging.rename(out)
        return
    if not force:
        raise ExportError(f"{out} exists (use --force to replace it)")
    old = out.with_name(out.name + ".old")
    _remove(old)
    out.rename(old)
    staging.rename(out)
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def export_bundle(cfg: Config, which: str, out: Path, *, merge: bool = False, force: bool = False,
                  console: Console) -> ExportResult:
    """Export trial ``which`` (a number or ``best``) of the config's study to ``out``."""
    from evals.models import load_tokenizer

    out = out.resolve()
    if out.exists() and not force:  # fail before any work; checked again when publishing
        raise ExportError(f"{out} exists (use --force to replace it)")
    study = load_existing_study(cfg.storage, cfg.study)
    record, cascade = select_trial(study, which, cfg.economics)
    source = Path(record.adapter_path)
    spec = AdapterSpec.from_json(json.loads((source / "roitune.json").read_text()))

    staging = out.with_name(out.name + ".partial")
    _remove(staging)  # what a killed export left behind
    out.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir()
    try:
        copied = _copy_adapter(source, staging, spec)
        lora_rank = adapter_rank(copied) if copied else 0
        tokenizer = load_tokenizer(spec.base_model)
        tokenizer.save_pretrained(staging)
        (staging / "labels.json").write_text(json.dumps(list(spec.labels), indent=2) + "\n")
        # Which study trial this is: `roitune meter` records a throughput measured elsewhere against it.
        (staging / SOURCE_FILE).write_text(json.dumps({"study": study.study_name, "trial": record.number}) + "\n")
        _write_template(staging, spec, tokenizer)
        _write_cascade_files(staging, record, cascade)
        dequantized = merge and spec.quantization is not None
        if merge and spec.full:
            raise ExportError(f"trial {record.number} is a full fine-tune: the bundle already is a standalone "
                              "model (drop --merge)")
        if merge:
            note = " (4-bit base loaded in full precision first: dequantised)" if dequantized else ""
            console.print(f"merging the adapter into a standalone model{note}")
            _write_merged(staging / "merged", spec, source)
        result = ExportResult(path=out, trial=record.number, spec=spec, rank=lora_rank, merged=merge,
                              dequantized=dequantized, serve_hint=serve_hint(spec, out, lora_rank))
        # The card lists every other file's digest; SHA256SUMS adds the card's.
        sums = checksums(staging)
        _write_card(staging, model_card(study, record, cfg.economics, result, sums, cascade))
        _write_checksums(staging, {**sums, "README.md": _sha256(staging / "README.md")})
        _publish(staging, out, force=force)
    except BaseException:  # Ctrl-C included: nothing half-written stays behind
        _remove(staging)
        raise
    return result


# -- the model card ------------------------------------------------------------------------


def _scores_row(split: str, result: SplitResult) -> str:
    return (f"| {split} | {result.n} | {pct(result.accuracy)} {interval(result.accuracy_ci)} "
            f"({result.correct} of {result.n}) | {pct(result.macro_f1)} {interval(result.macro_f1_ci)} |")


def _quality_section(record: CandidateRecord) -> list[str]:
    lines = ["## Quality", "", "Accuracy with its 95% Wilson interval, macro-F1 with a 95% bootstrap interval.", "",
             "| split | n | accuracy [95% CI] | macro-F1 [95% CI] |", "|---|---|---|---|"]
    lines.append(_scores_row("validation", record.validation))
    if record.test is not None:
        lines.append(_scores_row("test", record.test))
    else:
        lines += ["", "Test: not scored on test (only the sweep's finalists are, after they were chosen on "
                  "validation, so that model selection never sees the test split)."]
    if record.caps:
        lines += ["", "Caps: " + "; ".join(cap.text() for cap in record.caps) + "."]
    return lines


def _cost_section(record: CandidateRecord) -> list[str]:
    source = f", {record.cost_source}" if record.cost_source else ""
    speed = record.items_per_second
    return ["## Cost", "",
            f"- serving: {money(record.cost_per_item)} per item ({record.cost_provenance or 'unknown'}{source})",
            *([f"- throughput: {speed:.1f} items/s on {record.measured_on}, measured by the sweep"] if speed else []),
            f"- training: {money(record.compute_dollars)} ({record.compute_seconds:.0f} s)"]


def _roi_section(ranked: Ranked | None, economics: Economics) -> list[str]:
    lines = [f"## ROI against {economics.current_solution}", ""]
    if ranked is None:
        return lines + ["No ROI: the trial has no validation accuracy and cost in the study."]
    roi = ranked.roi
    return lines + [
        f"At {economics.tickets_per_month:,} items a month and {money(economics.cost_per_error)} per error, "
        f"with the validation accuracy ({pct(ranked.result.accuracy)}):", "",
        f"- monthly cost: {money(roi.monthly_cost)} (current: {money(roi.current_monthly_cost)})",
        f"- monthly savings: {money(roi.monthly_savings)}",
        f"- one-off cost: {money(roi.one_off_cost)} (compute + {economics.engineering_hours:g} "
        f"engineering hours at {money(economics.engineering_rate)})",
        f"- payback: {payback_text(roi.payback_months)}",
        f"- break-even volume: {volume_text(roi.break_even_volume)}",
    ]
def _cascade_section(record: CandidateRecord, cascade: CandidateRecord | None) -> list[str]:
    lines = ["## Confidence and cascade", ""]
    c = record.calibration
    if c is None:
        return lines + ["Not calibrated (`roitune cascade` calibrates a study's candidates): the probabilities are "
                        "the model's own, and `roitune serve --escalate-to` refuses this bundle."]
    test = "" if c.ece_test is None else f"; test ECE {c.ece_test[0]:.3f} -> {c.ece_test[1]:.3f}"
    lines.append(f"Temperature scaling (T = {c.temperature:.3f}) fitted on {c.fitted_on} validation items "
                 f"(`calibration.json`): validation ECE {c.ece_validation[0]:.3f} -> {c.ece_validation[1]:.3f}{test}.")
    if cascade is not None:
        parts = cascade.cascade
        assumed = (f" The fallback's accuracy was assumed ({pct(parts.assumed_fallback_accuracy)}), not measured."
                   if parts.assumed else "")
        lines += ["", f"Exported as {cascade.name} (trial {cascade.number}): items answered here when the calibrated "
                  f"confidence is at least {parts.threshold:.3f} ({pct(parts.coverage)} of validation items), the rest "
                  f"sent to {parts.fallback} (`cascade.json`; `roitune serve --escalate-to roitune.yaml`).{assumed}"]
    return lines


def _usage_section(result: ExportResult) -> list[str]:
    lines = ["## Use", "", "```", f"roitune predict {result.path} tickets.jsonl --out predictions.jsonl",
             f"roitune serve {result.path}", "```", ""]
    if result.serve_hint.startswith("vllm "):
        lines += ["With vLLM:", "", "```", result.serve_hint, "```"]
    else:
        lines.append(result.serve_hint + ".")
    if result.merged:
        lines += ["", "`merged/` holds the adapter merged into the base: a standalone model "
                  "(safetensors) with its tokenizer."]
        if result.dequantized:
            lines.append("The adapter was trained on a 4-bit (NF4) base; it was merged into the base loaded in "
                         "full precision (dequantised), so the merged model is a float model and may differ "
                         "slightly from the 4-bit adapter.")
    return lines


def _front_matter(spec: AdapterSpec) -> list[str]:
    base = hub_id(spec.base_model)
    # A generative adapter is a causal LM that answers with a label; a classifier head is a
    # sequence classifier.
    pipeline = "text-classification" if spec.head == "classifier" else "text-generation"
    return ["---", *([f"base_model: {base}"] if base else []), "library_name: peft",
            "tags: [roitune, lora, text-classification]", f"pipeline_tag: {pipeline}", "---"]


def model_card(study: optuna.Study, record: CandidateRecord, economics: Economics,
               result: ExportResult, sums: dict[str, str], cascade: CandidateRecord | None = None) -> str:
    spec = result.spec
    ranked = next((r for r in study_report(study, economics).ranked if r.record.number == record.number), None)
    lines = [
        *_front_matter(spec), "",
        f"# {result.path.name}", "",
        f"A LoRA adapter on {spec.base_model} that routes a ticket to one of {len(spec.labels)} labels "
        f"({spec.head} head), exported by roitune from trial {record.number} of study '{study.study_name}': "
        f"{record.name}.", "",
        "## Settings", "", "The trial's settings:", "", "| setting | value |", "|---|---|",
        *(f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |"
          for key, value in record.settings.items()), "",
        *_quality_section(record), "",
        *_cost_section(record), "",
        *_roi_section(ranked, economics), "",
        *_cascade_section(record, cascade), "",
        *_usage_section(result), "",
        "## Files", "", f"`{CHECKSUMS}` holds the sha256 of every file (check with `sha256sum -c {CHECKSUMS}`).",
        "", "| file | sha256 |", "|---|---|",
        *(f"| {name} | `{digest}` |" for name, digest in sums.items()),
    ]
    return "\n".join(lines) + "\n"
