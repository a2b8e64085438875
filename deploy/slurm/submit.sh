#!/bin/bash
# Submits the sweep's job array, then its merge to start when every task of
# the array has succeeded (afterok on the array's job id waits for all of
# its tasks). Run from the repository's root; extra arguments go to both
# sbatch calls (e.g. --partition=short). The environment (SCENARIO, SWEEP,
# SEEDS, METRIC, RESULTS) is passed on to the jobs, as sbatch does.
set -euo pipefail
here="$(dirname "$0")"
array=$(sbatch --parsable "$@" "$here/sweep.sbatch")
array=${array%%;*} # --parsable prints "jobid[;cluster]"
merge=$(sbatch --parsable "$@" --dependency=afterok:"$array" "$here/merge.sbatch")
echo "submitted the array as job $array and its merge as job ${merge%%;*}"
