"""evals.data: every bad input is reported as ``file:line: reason``; splits are seeded,
stratified and disjoint; leakage between train and test is found after normalising."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from evals.data import (
    DataError,
    DataSpec,
    Example,
    SplitSpec,
    leakage,
    load_examples,
    load_preferences,
    load_splits,
    stratified_split,
)

LABELS = ["billing", "shipping", "technical"]


def write_jsonl(path: Path, rows: list) -> Path:
    """Each row is a dict (dumped as JSON) or a str (written verbatim) on its own line."""
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows),
                    encoding="utf-8")
    return path


def chat(text: str, label: str | None) -> dict:
    messages = [{"role": "system", "content": "Route the ticket."}, {"role": "user", "content": text}]
    if label is not None:
        messages.append({"role": "assistant", "content": label})
    return {"messages": messages}


def problems_of(call) -> list[str]:
    with pytest.raises(DataError) as info:
        call()
    return info.value.problems


GOOD = {"text": "my card was charged twice", "label": "billing"}


# --- one bad line, one precise message ---------------------------------------------------


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ('{"text": "unterminated", "label": "billing"', "invalid JSON"),
        ('["a", "list"]', "expected a JSON object, got list"),
        ({"text": "where is my parcel"}, "missing field 'label'"),
        ({"label": "billing"}, "missing field 'text'"),
        ({"text": "   ", "label": "billing"}, "field 'text': empty or not a string"),
        ({"text": 42, "label": "billing"}, "field 'text': empty or not a string"),
        ({"text": "where is my parcel", "label": ""}, "field 'label': empty or not a string"),
        (chat("where is my parcel", None), "field 'messages': no non-empty assistant message"),
        (chat("", "billing"), "field 'messages': no non-empty user message"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "field 'messages[0].role'"),
    ],
)
def test_bad_line_names_file_line_and_reason(tmp_path, bad_row, reason):
    path = write_jsonl(tmp_path / "train.jsonl", [GOOD, GOOD, bad_row, GOOD])

    problems = problems_of(lambda: load_examples(path))

    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:3: ")
    assert reason in problems[0]


def test_label_outside_the_label_set(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl",
                       [GOOD, {"text": "the app crashes", "label": "technicall"}])

    problems = problems_of(lambda: load_examples(path, labels=LABELS))

    assert problems == [f"{path}:2: label 'technicall' is not in the label set (3 labels)"]
    # Without a closed label set the same file is fine.
    assert [e.label for e in load_examples(path)] == ["billing", "technicall"]


def test_bad_encoding_reports_its_line(tmp_path):
    path = tmp_path / "train.jsonl"
    good = json.dumps(GOOD).encode()
    path.write_bytes(good + b"\n" + good + b"\n" + b'\xff\xfe{"text": "caf\xe9", "label": "billing"}\n' + good + b"\n")

    problems = problems_of(lambda: load_examples(path))

    assert problems == [f"{path}:3: not UTF-8 (byte 0)"]


def test_utf8_bom_on_first_line_is_accepted(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")

    assert load_examples(path) == [Example("my card was charged twice", "billing", 1)]


def test_chat_rows_take_last_user_and_assistant_message(tmp_path):
    row = {"messages": [{"role": "system", "content": "Route."},
                        {"role": "user", "content": "shot"}, {"role": "assistant", "content": "shipping"},
                        {"role": "user", "content": "  my card was charged twice "},
                        {"role": "assistant", "content": "billing"}]}
    path = write_jsonl(tmp_path / "train.jsonl", [row])

    assert load_examples(path) == [Example("my card was charged twice", "billing", 1)]


def test_blank_lines_keep_line_numbers(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n   \n" + '{"text": "x"}\n', encoding="utf-8")

    problems = problems_of(lambda: load_examples(path))

    assert problems == [f"{path}:4: missing field 'label'"]


def test_csv_missing_label_cell(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text('text,label\n"my card was charged twice",billing\n"where is my parcel",\n'
                    '"the app, it crashes",technical\n', encoding="utf-8")

    problems = problems_of(lambda: load_examples(path))

    assert problems == [f"{path}:3: field 'label': empty or not a string"]


def test_csv_custom_columns_and_multiline_cell(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text('id,body,category\n1,"first line\nsecond line",billing\n2,,shipping\n', encoding="utf-8")

    problems = problems_of(lambda: load_examples(path, text_field="body", label_field="category"))

    # Row 2 starts on physical line 4, after the quoted cell that spans lines 2-3.
    assert problems == [f"{path}:4: field 'body': empty or not a string"]


def test_csv_with_wrong_column_names(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text("question,answer\nhello,billing\n", encoding="utf-8")

    problems = problems_of(lambda: load_examples(path))

    assert problems == [f"{path}:2: missing field 'text' (or 'messages')"]


def test_missing_file_and_empty_file(tmp_path):
    missing = tmp_path / "nope.jsonl"
    assert problems_of(lambda: load_examples(missing)) == [f"{missing}: no such file"]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    assert problems_of(lambda: load_examples(empty)) == [f"{empty}: no rows"]


@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        ({"prompt": "my card was charged twice", "chosen": "billing"},
         "field 'rejected': missing, empty or not a string"),
        ({"prompt": "my card was charged twice", "chosen": "billing", "rejected": "  "},
         "field 'rejected': missing, empty or not a string"),
        ({"prompt": "my card was charged twice", "chosen": "billing", "rejected": "billing"},
         "field 'rejected': same as 'chosen'"),
        ({"chosen": "billing", "rejected": "shipping"}, "field 'prompt': missing, empty or not a string"),
    ],
)
def test_bad_preference_pairs(tmp_path, bad_row, expected):
    good = {"prompt": "where is my parcel", "chosen": "shipping", "rejected": "billing"}
    path = write_jsonl(tmp_path / "preferences.jsonl", [good, bad_row, good])

    problems = problems_of(lambda: load_preferences(path))

    assert problems == [f"{path}:2: {expected}"]


def test_preference_label_outside_the_label_set(tmp_path):
    path = write_jsonl(tmp_path / "preferences.jsonl",
                       [{"prompt": "where is my parcel", "chosen": "shipping", "rejected": "refunds"}])

    problems = problems_of(lambda: load_preferences(path, labels=LABELS))

    assert problems == [f"{path}:1: field 'rejected': label 'refunds' not in the label set"]


def test_good_preferences_load_with_line_numbers(tmp_path):
    path = write_jsonl(tmp_path / "preferences.jsonl",
                       [{"prompt": "where is my parcel", "chosen": "shipping", "rejected": "billing"}])

    [pair] = load_preferences(path, labels=LABELS)

    assert (pair.prompt, pair.chosen, pair.rejected, pair.line) == ("where is my parcel", "shipping", "billing", 1)


def test_all_problems_reported_together_in_line_order(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [
        json.dumps(GOOD).encode(),
        b'{"text": "broken',  # 2: invalid JSON (found in the parsing pass)
        b'\xff\xfe{"text": "x", "label": "billing"}',  # 3: bad encoding (found in the first pass)
        json.dumps({"text": "where is my parcel"}).encode(),  # 4: missing label
        json.dumps({"text": "the app crashes", "label": "bugs"}).encode(),  # 5: outside the set
        json.dumps(chat("help", None)).encode(),  # 6: chat row without an answer
        json.dumps(GOOD).encode(),
    ]
    path.write_bytes(b"\n".join(rows) + b"\n")

    with pytest.raises(DataError) as info:
        load_examples(path, labels=LABELS)

    lines = [int(p.removeprefix(f"{path}:").split(":")[0]) for p in info.value.problems]
    assert lines == [2, 3, 4, 5, 6]
    # The message shows the same problems, one per line, in the same (line) order.
    assert str(info.value).splitlines() == info.value.problems
    assert "invalid JSON" in info.value.problems[0]
    assert "not UTF-8" in info.value.problems[1]


def test_many_problems_are_truncated_in_the_message_but_all_kept(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": f"ticket {i}"} for i in range(25)])

    with pytest.raises(DataError) as info:
        load_examples(path)

    assert len(info.value.problems) == 25
    message = str(info.value).splitlines()
    assert message[0].startswith(f"{path}:1: ")
    assert message[-1] == "(and 15 more problems)"


# --- splits -------------------------------------------------------------------------------


def examples_with_counts(counts: dict[str, int]) -> list[Example]:
    return [Example(f"{label} ticket number {i}", label, line=len(counts) * 1000 + i)
            for label, n in counts.items() for i in range(n)]


COUNTS = {"billing": 40, "shipping": 23, "technical": 11, "account": 5, "rare": 3, "single": 1}


def test_stratified_split_is_seeded():
    examples = examples_with_counts(COUNTS)

    first = stratified_split(examples, [0.2, 0.2], seed=13)
    again = stratified_split(examples, [0.2, 0.2], seed=13)
    other = stratified_split(examples, [0.2, 0.2], seed=14)

    assert first == again
    assert [set(part) for part in first] != [set(part) for part in other]


@pytest.mark.parametrize("fractions", [[0.2, 0.2], [0.1, 0.3], [0.45, 0.45], [0.3]])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stratified_split_keeps_every_label_in_every_part_and_is_disjoint(fractions, seed):
    counts = {**COUNTS, **{f"label{n}": n for n in range(3, 13)}}
    examples = examples_with_counts(counts)

    parts = stratified_split(examples, fractions, seed=seed)

    assert len(parts) == len(fractions) + 1
    merged = [e for part in parts for e in part]
    assert sorted(merged, key=lambda e: e.text) == sorted(examples, key=lambda e: e.text)  # no overlap, no loss
    for index, part in enumerate(parts):
        seen = Counter(e.label for e in part)
        for label, n in counts.items():
            if n >= len(fractions) + 1:
                assert seen[label] >= 1, f"label {label} ({n} examples) missing from part {index}"
    # The held-out parts are roughly the asked fractions of the big classes.
    billing_val = sum(e.label == "billing" for e in parts[1])
    assert billing_val == round(40 * fractions[0])


def test_leakage_is_found_after_normalising_case_punctuation_and_spacing():
    train = [Example("My card was charged TWICE!", "billing"), Example("Where is my parcel?", "shipping")]
    test = [Example("  my card, was charged   twice ", "billing"), Example("The app crashes", "technical")]

    assert leakage(train, test) == [test[0]]


def test_load_splits_warns_about_leakage(tmp_path):
    train = [{"text": f"ticket about {label} number {i}", "label": label} for label in LABELS for i in range(4)]
    train.append({"text": "My card was charged TWICE!", "label": "billing"})
    test = [{"text": "my card... was charged  twice", "label": "billing"},
            {"text": "the parcel never came", "label": "shipping"}]
    validation = [{"text": "a fresh ticket", "label": "technical"}]
    spec = DataSpec(train=str(write_jsonl(tmp_path / "train.jsonl", train)),
                    validation=str(write_jsonl(tmp_path / "validation.jsonl", validation)),
                    test=str(write_jsonl(tmp_path / "test.jsonl", test)))

    splits = load_splits(spec)

    assert splits.labels == sorted(LABELS)
    [warning] = splits.warnings
    assert warning.startswith("leakage: 1 test texts also occur in train")
    assert "my card... was charged" in warning


def test_load_splits_with_only_train_splits_it_and_warns(tmp_path):
    rows = [{"text": f"{label} ticket number {i}", "label": label}
            for label, n in {"billing": 20, "shipping": 10, "technical": 5}.items() for i in range(n)]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    spec = DataSpec(train=str(path), split=SplitSpec(validation=0.2, test=0.2, seed=5))

    splits = load_splits(spec)

    assert (len(splits.train), len(splits.validation), len(splits.test)) == (21, 7, 7)
    for part in (splits.train, splits.validation, splits.test):
        assert set(Counter(e.label for e in part)) == {"billing", "shipping", "technical"}
    texts = [e.text for e in splits.train + splits.validation + splits.test]
    assert sorted(texts) == sorted(r["text"] for r in rows)
    assert any(w.startswith(f"split {path} stratified (seed 5) into 21 train / 7 validation / 7 test")
               for w in splits.warnings)
    assert load_splits(spec).test == splits.test  # seeded: the same split again


def test_load_splits_splits_only_the_missing_part(tmp_path):
    rows = [{"text": f"{label} ticket number {i}", "label": label} for label in LABELS for i in range(10)]
    test_rows = [{"text": f"held out {label}", "label": label} for label in LABELS]
    spec = DataSpec(train=str(write_jsonl(tmp_path / "train.jsonl", rows)),
                    test=str(write_jsonl(tmp_path / "test.jsonl", test_rows)))

    splits = load_splits(spec)

    assert [e.text for e in splits.test] == [r["text"] for r in test_rows]
    assert len(splits.train) + len(splits.validation) == 30
    assert len(splits.validation) == 6


def test_load_splits_reports_problems_of_every_file(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [GOOD, {"text": "no label"}])
    test = write_jsonl(tmp_path / "test.jsonl", ['{"oops"', {"text": "the app crashes", "label": "technical"}])
    spec = DataSpec(train=str(train), test=str(test), validation=str(train))

    problems = problems_of(lambda: load_splits(spec))

    assert f"{train}:2: missing field 'label'" in problems
    assert any(p.startswith(f"{test}:1: invalid JSON") for p in problems)


def test_load_splits_rejects_test_labels_never_seen_in_train(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [GOOD, {"text": "where is my parcel", "label": "shipping"}])
    test = write_jsonl(tmp_path / "test.jsonl", [GOOD, {"text": "the app crashes", "label": "technical"}])
    spec = DataSpec(train=str(train), validation=str(train), test=str(test))

    assert problems_of(lambda: load_splits(spec)) == [f"{test}:2: label 'technical' never occurs in train"]


@pytest.mark.parametrize("cap", [30, 7, 2])
def test_max_train_rows_caps_the_training_rows(tmp_path, cap):
    rows = [{"text": f"{label} ticket number {i}", "label": label}
            for label, n in {"billing": 40, "shipping": 25, "technical": 15, "account": 10}.items()
            for i in range(n)]
    held = [{"text": f"held out {label}", "label": label} for label in ("billing", "shipping", "technical", "account")]
    spec = DataSpec(train=str(write_jsonl(tmp_path / "train.jsonl", rows)),
                    validation=str(write_jsonl(tmp_path / "validation.jsonl", held)),
                    test=str(write_jsonl(tmp_path / "test.jsonl", held)),
                    max_train_rows=cap)

    splits = load_splits(spec)

    assert 0 < len(splits.train) <= cap
    assert len({e.text for e in splits.train}) == len(splits.train)
    assert {e.text for e in splits.train} <= {r["text"] for r in rows}
    if cap >= 4:  # stratified: every label survives a cap that leaves room for each
        assert {e.label for e in splits.train} == {"billing", "shipping", "technical", "account"}
    assert splits.labels == sorted(["billing", "shipping", "technical", "account"])  # from the full train
