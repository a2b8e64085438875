#!/bin/bash
# Runs a Slurm job array and its dependent merge on this machine, without
# Slurm: for each index of the array script's `#SBATCH --array=...`, runs
# the script with bash and the environment Slurm gives an array task
# (SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT,
# SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_MAX, SLURM_ARRAY_TASK_STEP,
# SLURM_JOB_ID, SLURM_JOB_NAME, SLURM_CPUS_PER_TASK, SLURM_SUBMIT_DIR), one
# task after the other; then, if every task succeeded (as afterok), the
# merge script as a plain job. Stops at the first task that fails, with its
# status. `asyncsim` must be on the PATH, or built in target/release.
#
# Usage, from the repository's root:
#   deploy/run-array-locally.sh [ARRAY_SCRIPT [MERGE_SCRIPT]]
# (default deploy/slurm/sweep.sbatch and deploy/slurm/merge.sbatch). The
# scripts' own variables (SCENARIO, SWEEP, SEEDS, METRIC, RESULTS) pass
# through, as sbatch passes the submitting shell's environment.
#
# What it leaves out: the scheduling itself (tasks here run in turn, not at
# once on many nodes), the --output files (output goes to this terminal),
# and every directive but --array, --job-name and --cpus-per-task.
set -euo pipefail

array_script="${1:-deploy/slurm/sweep.sbatch}"
merge_script="${2:-deploy/slurm/merge.sbatch}"

if ! command -v asyncsim >/dev/null 2>&1 && [ -x target/release/asyncsim ]; then
  PATH="$PWD/target/release:$PATH"
fi

# The value of `#SBATCH --NAME=VALUE` in SCRIPT, read as sbatch reads
# directives: up to the first line that is neither a comment nor blank.
directive() {
  awk -v name="$2" '
    /^#SBATCH/ {
      for (i = 2; i <= NF; i++) if (index($i, "--" name "=") == 1) { print substr($i, length(name) + 4); exit }
      next
    }
    /^#/ || /^[[:space:]]*$/ { next }
    { exit }' "$1"
}

# The indexes of an --array value: 0-3, 1-7:2, 1,3,5, or a mix; a `%N`
# limit on tasks at once is ignored here (they run one at a time).
indexes() {
  local spec="${1%%\%*}" part lo hi step i
  local -a parts
  IFS=, read -ra parts <<<"$spec"
  for part in "${parts[@]}"; do
    step=1
    if [[ $part == *:* ]]; then step=${part#*:}; part=${part%%:*}; fi
    if [[ $part == *-* ]]; then lo=${part%-*}; hi=${part#*-}; else lo=$part; hi=$part; fi
    if ! [[ $lo =~ ^[0-9]+$ && $hi =~ ^[0-9]+$ && $step =~ ^[1-9][0-9]*$ ]] || ((lo > hi)); then
      echo "run-array-locally: $array_script: bad --array value \`$1\`" >&2
      return 2
    fi
    for ((i = lo; i <= hi; i += step)); do echo "$i"; done
  done
}

spec="$(directive "$array_script" array)"
if [ -z "$spec" ]; then
  echo "run-array-locally: $array_script has no #SBATCH --array=... directive" >&2
  exit 2
fi
list="$(indexes "$spec")"
mapfile -t ids < <(sort -n -u <<<"$list")
step=1
if [[ $spec =~ ^[0-9]+-[0-9]+:([0-9]+) ]]; then step=${BASH_REMATCH[1]}; fi
job=$((1000 + RANDOM % 9000)) # the array's job id, as Slurm would number it
cpus="$(directive "$array_script" cpus-per-task)"

for k in "${!ids[@]}"; do
  echo "== task ${ids[$k]} of array $job (${#ids[@]} tasks): $array_script" >&2
  env SLURM_ARRAY_JOB_ID="$job" SLURM_ARRAY_TASK_ID="${ids[$k]}" SLURM_ARRAY_TASK_COUNT="${#ids[@]}" \
    SLURM_ARRAY_TASK_MIN="${ids[0]}" SLURM_ARRAY_TASK_MAX="${ids[-1]}" SLURM_ARRAY_TASK_STEP="$step" \
    SLURM_JOB_ID="$((job + k))" SLURM_JOB_NAME="$(directive "$array_script" job-name)" \
    ${cpus:+SLURM_CPUS_PER_TASK="$cpus"} SLURM_SUBMIT_DIR="$PWD" \
    bash "$array_script"
done

echo "== merge (after every task succeeded): $merge_script" >&2
env SLURM_JOB_ID="$((job + ${#ids[@]}))" SLURM_JOB_NAME="$(directive "$merge_script" job-name)" \
  SLURM_CPUS_PER_TASK="$(directive "$merge_script" cpus-per-task)" SLURM_SUBMIT_DIR="$PWD" \
  bash "$merge_script"
