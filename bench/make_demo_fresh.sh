#!/usr/bin/env bash
# `make demo` as a new user runs it: a fresh clone of HEAD, a fresh HOME (no pip or model cache),
# set-up included; writes bench/results/make_demo.log (machine, commit, the demo's output, exit
# status and wall seconds).
# Run: bash bench/make_demo_fresh.sh
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
git clone -q "$root" "$work/clone"
mkdir "$work/home"
out="$root/bench/results/make_demo.log"
{
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) logical CPUs"
  echo "commit: $(git -C "$work/clone" rev-parse --short HEAD)"
  echo "started: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out"
start=$(date +%s)
(cd "$work/clone" && HOME="$work/home" make demo) >> "$out" 2>&1
rc=$?
echo "rc=$rc seconds=$(( $(date +%s) - start ))" >> "$out"
sed -i "s|$work/clone/||g; s|$work|<work>|g; s|/tmp/pip-build-env-[a-z0-9_]*|<pip-build-env>|g" "$out"
tail -1 "$out"
rm -rf "$work"
exit $rc
