#!/usr/bin/env bash
# Regenerate and verify the published leaderboard (leaderboard/).
#
# Usage: ci/regenerate_leaderboard.sh [verify|refresh]
#
# verify (default; run by .ci/run after the tests):
#   1. `biobench leaderboard --check`: the committed tables, README block and report
#      table are exactly what the committed records in leaderboard/results render to.
#   2. `biobench run --all --profile ci --seeds 0` into a fresh folder. Only seed 0 is
#      re-run, to stay inside CI's time budget (the committed leaderboard has more seeds).
#   3. `biobench leaderboard --compare`: every fresh record matches the committed record
#      of the same run id (same status; accuracy and metrics within the tolerances
#      documented in biobench.leaderboard.TOLERANCES / RELATIVE_TOLERANCES), and no
#      committed seed-0 record is missing from the fresh run.
#   4. Renders the fresh records (tables and HTML report) into the fresh folder.
#
# refresh (run by the scheduled GitHub workflow):
#   1. the defaults track: `biobench run --all --profile ci --seeds $SEEDS` (default
#      "0 1 2 3 4") into a fresh folder;
#   2. the tuned track: `biobench tune $TUNE --seeds $SEEDS` (default "--arch mlp
#      --profile ci --trials 8 --epochs-per-trial 1 --jobs 2": every rule the MLP
#      supports, 8 trials of one ci epoch each, chosen on validation, the best options
#      re-run on the seeds with the whole ci budget);
#   3. replaces the records in leaderboard/results (and the trial records in
#      leaderboard/results/tuning) with them, renders everything with `biobench
#      leaderboard` and checks the result with `--check`.
#
# Environment:
#   BIOBENCH         the biobench command (default `biobench`)
#   BIOBENCH_DATA    MNIST root (default ../shared/datasets beside the repository, if it exists)
#   SEEDS            seeds of `refresh` (default "0 1 2 3 4")
#   TUNE             what `refresh` tunes (default "--arch mlp --profile ci --trials 8
#                    --epochs-per-trial 1 --jobs 2";
#                    "none": keep no tuned track)
#   FRESH_DIR        where fresh records go (default a new temporary folder)
#   GRID             the pairings and profile to run (default "--all --profile ci --jobs 2":
#                    two 1-thread workers, as the committed records were made; the
#                    script's own test runs a one-pairing grid)
#   LEADERBOARD_DIR  the leaderboard folder, records in its results/ (default leaderboard)
#   README_FILE      README holding the generated block (default README.md; "none": skip it)
set -euo pipefail

mode=${1:-verify}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
biobench=${BIOBENCH:-biobench}
if [ -z "${BIOBENCH_DATA:-}" ] && [ -d "$repo/../shared/datasets/MNIST/raw" ]; then
  export BIOBENCH_DATA="$repo/../shared/datasets"
fi
read -r -a grid <<< "${GRID:---all --profile ci --jobs 2}"
board=${LEADERBOARD_DIR:-leaderboard}
results=$board/results
readme=${README_FILE:-README.md}
if [ "$readme" = none ]; then readme_args=(--no-readme); else readme_args=(--readme "$readme"); fi
fresh=${FRESH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/biobench-fresh.XXXXXX")}
mkdir -p "$fresh"

count_records() { find "$1" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l; }

run_grid() {
  # Exit status 1 means some runs failed; their records are compared like any other.
  local rc=0
  "$biobench" run "${grid[@]}" --seeds "$@" --out "$fresh" || rc=$?
  if [ "$rc" -gt 1 ]; then
    echo "biobench run stopped with exit status $rc" >&2
    exit "$rc"
  fi
}

case "$mode" in
  verify)
    if [ "$(count_records "$results")" -eq 0 ]; then
      echo "no committed records in $results: produce them with '$0 refresh' and commit them" >&2
      exit 1
    fi
    echo "== committed leaderboard matches its records"
    "$biobench" leaderboard --results "$results" --out "$board" "${readme_args[@]}" --check
    echo "== fresh run of the grid (${grid[*]}), seed 0, into $fresh"
    run_grid 0
    echo "== fresh records against committed ones"
    "$biobench" leaderboard --results "$results" --out "$board" --compare "$fresh"
    echo "== rendering the fresh records"
    "$biobench" leaderboard --results "$fresh" --out "$fresh/rendered" --no-readme
    ;;
  refresh)
    read -r -a seeds <<< "${SEEDS:-0 1 2 3 4}"
    tune_spec=${TUNE:---arch mlp --profile ci --trials 8 --epochs-per-trial 1 --jobs 2}
    echo "== fresh run of the grid (${grid[*]}), seeds ${seeds[*]}, into $fresh"
    run_grid "${seeds[@]}"
    if [ "$tune_spec" != none ]; then
      read -r -a tune <<< "$tune_spec"
      echo "== tuned track: biobench tune ${tune[*]} --seeds ${seeds[*]}, into $fresh/tuned"
      rc=0
      "$biobench" tune "${tune[@]}" --seeds "${seeds[@]}" --out "$fresh/tuned" || rc=$?
      if [ "$rc" -gt 1 ]; then
        echo "biobench tune stopped with exit status $rc" >&2
        exit "$rc"
      fi
    fi
    mkdir -p "$results"
    find "$results" -maxdepth 1 -name '*.json' -delete
    rm -rf "$results/tuning"
    cp "$fresh"/*.json "$results"/
    if [ -d "$fresh/tuned" ]; then
      cp "$fresh/tuned"/*.json "$results"/
      mkdir -p "$results/tuning"
      # the trial records, one folder per study (not the studies' database or training logs)
      target=$(cd "$results/tuning" && pwd)
      (cd "$fresh/tuned/tuning" && find . -mindepth 2 -maxdepth 2 -name '*.json' -exec cp --parents {} "$target/" \;)
    fi
    echo "== rendering $board/"
    "$biobench" leaderboard --results "$results" --out "$board" "${readme_args[@]}"
    "$biobench" leaderboard --results "$results" --out "$board" "${readme_args[@]}" --check
    ;;
  *)
    echo "usage: $0 [verify|refresh]" >&2
    exit 2
    ;;
esac
