"""optimizer.config: defaults < YAML < --set; every problem reported together, one per line;
unknown keys name the nearest valid key; YAML is parsed safely; data paths are relative to the
config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.config import Config, ConfigError, demo_config_text, load_config, parse_overrides


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error_lines(call) -> list[str]:
    with pytest.raises(ConfigError) as info:
        call()
    return str(info.value).splitlines()


MINIMAL = "data:\n  train: data/train.jsonl\n"


def test_demo_config_validates(tmp_path, tickets_dir):
    path = write(tmp_path / "roitune.yaml", demo_config_text())

    cfg = load_config(path)

    assert isinstance(cfg, Config)
    assert Path(cfg.data.train) == (tickets_dir / "train.jsonl").resolve()
    assert Path(cfg.data.train).is_file() and Path(cfg.data.preferences).is_file()
    assert cfg.study == "demo"
    assert cfg.search.trials == 2 and cfg.search.rank == [8, 16] and cfg.search.methods == ["full", "lora"]
    assert cfg.search.trial_timeout_s == 240 and cfg.data.max_train_rows is None  # a time budget, not a row cap
    assert cfg.baselines.few_shot.k == [4] and cfg.baselines.max_llm_items == 120
    assert cfg.economics.tickets_per_month == 5_000_000
    assert cfg.budget.max_dollars == 5.0


def test_defaults_then_yaml_then_set(tmp_path):
    path = write(tmp_path / "roitune.yaml", MINIMAL + "search:\n  trials: 2\n  rank: [4]\nstudy: from-yaml\n")

    defaults = load_config(write(tmp_path / "min.yaml", MINIMAL))
    from_yaml = load_config(path)
    from_flags = load_config(path, ["search.trials=8", "search.rank=[16, 32]", "seed=7"])

    assert (defaults.search.trials, defaults.search.rank, defaults.study) == (4, [8, 16], "roitune")
    assert (from_yaml.search.trials, from_yaml.search.rank, from_yaml.study) == (2, [4], "from-yaml")
    assert (from_flags.search.trials, from_flags.search.rank, from_flags.seed) == (8, [16, 32], 7)
    assert from_flags.study == "from-yaml"  # keys not overridden keep the YAML value
    assert from_flags.search.objective == "roi"  # and keys in neither keep the default


def test_set_creates_nested_sections_and_parses_yaml_values(tmp_path):
    cfg = load_config(write(tmp_path / "roitune.yaml", MINIMAL),
                      ["budget.max_dollars=2.5", "baselines.few_shot.k=[1, 2]", "search.list_labels_in_prompt=true"])

    assert cfg.budget.max_dollars == 2.5
    assert cfg.baselines.few_shot.k == [1, 2]
    assert cfg.search.list_labels_in_prompt is True


def test_unknown_top_level_key_names_the_nearest(tmp_path):
    path = write(tmp_path / "roitune.yaml", MINIMAL + "serch:\n  trials: 3\n")

    assert error_lines(lambda: load_config(path)) == [f"{path}: serch: unknown key; did you mean 'search'?"]


def test_unknown_nested_key_names_the_nearest(tmp_path):
    path = write(tmp_path / "roitune.yaml", MINIMAL + "search:\n  rnak: [4]\n")

    assert error_lines(lambda: load_config(path)) == [
        f"{path}: search.rnak: unknown key; did you mean 'search.rank'?"]


def test_unknown_key_without_a_near_one_lists_the_valid_keys(tmp_path):
    path = write(tmp_path / "roitune.yaml", MINIMAL + "budget:\n  zzzzzz: 1\n")

    [line] = error_lines(lambda: load_config(path))

    assert line == f"{path}: budget.zzzzzz: unknown key; valid keys here: max_dollars"


def test_unknown_key_from_set_flag(tmp_path):
    path = write(tmp_path / "roitune.yaml", MINIMAL)

    [line] = error_lines(lambda: load_config(path, ["search.trails=3"]))

    assert "search.trails: unknown key; did you mean 'search.trials'?" in line


def test_several_problems_reported_together(tmp_path):
    path = write(tmp_path / "roitune.yaml",
                 "serch: {}\nsearch:\n  rnak: [4]\n  trials: 0\neconomics:\n  tickets_per_month: lots\n")

    lines = error_lines(lambda: load_config(path, ["nonsense", "study=[unclosed"]))

    assert len(lines) == 7
    assert "--set nonsense: expected key=value" in lines
    assert any(line.startswith("--set study=[unclosed: bad value") for line in lines)
    body = "\n".join(lines)
    assert "data: Field required" in body
    assert "serch: unknown key; did you mean 'search'?" in body
    assert "search.rnak: unknown key; did you mean 'search.rank'?" in body
    assert "search.trials: Input should be greater than or equal to 1" in body
    assert "economics.tickets_per_month:" in body


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("search.trials", "--set search.trials: expected key=value"),
        ("=3", "--set =3: expected key=value"),
        ("search.rank=[4, 8", "--set search.rank=[4, 8: bad value"),
    ],
)
def test_set_with_bad_syntax(tmp_path, flag, expected):
    path = write(tmp_path / "roitune.yaml", MINIMAL)

    lines = error_lines(lambda: load_config(path, [flag]))

    assert len(lines) == 1 and lines[0].startswith(expected)


def test_parse_overrides_types():
    pairs, problems = parse_overrides(["a.b=3", "c=0.5", "d=[x, y]", "e=", "f=true", "g=text with = sign"])

    assert problems == []
    assert pairs == [("a.b", 3), ("c", 0.5), ("d", ["x", "y"]), ("e", ""), ("f", True), ("g", "text with = sign")]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_yaml_that_is_not_a_mapping(tmp_path, text):
    path = write(tmp_path / "roitune.yaml", text)

    assert error_lines(lambda: load_config(path)) == [f"{path}: expected a mapping of keys at the top level"]


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path / "roitune.yaml", MINIMAL + "search:\n  rank: [4, 8\n  trials: 2\n")

    [line] = error_lines(lambda: load_config(path))

    assert line.startswith(f"{path}:")
    assert "invalid YAML" in line
    line_number = int(line.removeprefix(f"{path}:").split(":")[0])
    assert line_number in (4, 5)  # the unclosed list starts on line 4; the parser notices on 5


def test_python_tags_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path / "roitune.yaml",
                 MINIMAL + f"study: !!python/object/apply:os.system ['touch {marker}']\n")

    [line] = error_lines(lambda: load_config(path))

    assert "invalid YAML" in line and "python/object" in line
    assert not marker.exists()  # nothing was constructed, let alone run


def test_python_object_tag_refused(tmp_path):
    path = write(tmp_path / "roitune.yaml", MINIMAL + "search: !!python/object:optimizer.config.Config {}\n")

    [line] = error_lines(lambda: load_config(path))

    assert line.startswith(f"{path}:") and "invalid YAML" in line


def test_relative_data_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    path = write(project / "conf" / "roitune.yaml",
                 "data:\n  train: data/train.jsonl\n  test: ../shared/test.jsonl\n"
                 f"  validation: {tmp_path / 'abs' / 'val.jsonl'}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    cfg = load_config(path)

    assert cfg.data.train == str((project / "conf" / "data" / "train.jsonl").resolve())
    assert cfg.data.test == str((project / "shared" / "test.jsonl").resolve())
    assert cfg.data.validation == str(tmp_path / "abs" / "val.jsonl")  # absolute stays as is


def test_data_path_given_with_set_is_relative_to_cwd(tmp_path, monkeypatch):
    path = write(tmp_path / "conf" / "roitune.yaml", MINIMAL)
    monkeypatch.chdir(tmp_path)

    cfg = load_config(path, ["data.test=mine/test.jsonl"])

    assert cfg.data.test == str((tmp_path / "mine" / "test.jsonl").resolve())
    assert cfg.data.train == str((tmp_path / "conf" / "data" / "train.jsonl").resolve())


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"

    [line] = error_lines(lambda: load_config(missing))

    assert line.startswith(f"{missing}: no such config file") and "roitune init" in line


def test_config_from_set_flags_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    cfg = load_config(None, ["data.train=t.jsonl"])

    assert cfg.data.train == str((tmp_path / "t.jsonl").resolve())
