#!/usr/bin/env bash
# Feeds asyncsim hostile inputs (issue 8) and prints a Markdown table of
# what it did with each: exit status, the first line of stderr, wall time
# and peak resident memory.
#
# Usage: scripts/hostile.sh PATH/TO/asyncsim [FILTER]
#
# Builds nothing: pass the binary (e.g. target/release/asyncsim after
# `cargo build --release`). FILTER, a regular expression, keeps only the
# inputs whose name matches. Every command runs under `ulimit -v 4000000`
# (about 3.8 GiB of address space) and `timeout 60` (HOSTILE_TIMEOUT to
# change it), so that no input can take the machine down; exit 124 means a
# timeout, 128+N a signal N (134: abort, 137: killed). The acceptance rule:
# every exit is 0, 1, 2 or 3, with a message on stderr. The script exits 1
# if any input broke that rule, else 0.
#
# Needs bash, coreutils (timeout, mkfifo, head), awk and GNU time
# (/usr/bin/time).
set -uo pipefail

if [[ $# -lt 1 || ! -x $1 ]]; then
  echo "usage: $0 PATH/TO/asyncsim [FILTER]" >&2
  exit 2
fi
BIN=$(realpath "$1")
FILTER=${2:-}
LIMIT=${HOSTILE_TIMEOUT:-60}
[[ -x /usr/bin/time ]] || { echo "$0: needs GNU time at /usr/bin/time" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/asyncsim-hostile.XXXXXX")
WRITER=""
cleanup() {
  [[ -n $WRITER ]] && kill "$WRITER" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
# Cases run in pipelines (subshells): a broken rule is recorded in a file.
BAD="$TMP/broken-rule"

# A small valid scenario: 100 messages/s for one second through a queue.
base() {
  cat <<'EOF'
name = "hostile"
concept = "a hostile input"
seed = 1

[run]
duration_ms = 1_000

[producers.producer]
target = "broker"
arrival = { process = "poisson", rate_per_s = 100 }

[brokers.broker]
kind = "queue"

[consumers.consumer]
source = "broker"
processing = { dist = "constant", ms = 1 }
EOF
}

# base() with line $1 (a key = value) replaced by $2, e.g.
# with 'rate_per_s' 'arrival = { process = "poisson", rate_per_s = 0 }'.
with() {
  base | awk -v key="$1" -v line="$2" 'index($0, key) == 1 { print line; next } { print }'
}

overload_30_days() {
  cat <<'EOF'
name = "overload"
concept = "10x overload for 30 days: an unbounded queue grows"
seed = 1

[run]
duration_ms = 2_592_000_000

[network]
latency = { dist = "constant", ms = 1 }

[producers.producer]
target = "broker"
arrival = { process = "poisson", rate_per_s = 1000 }

[brokers.broker]
kind = "queue"

[consumers.consumer]
source = "broker"
processing = { dist = "constant", ms = 10 }
concurrency = 1
EOF
}

# Runs `asyncsim ARGS...` bounded and measured; prints one table row.
# $1: the input's name; $2: what to show as the command; the rest: args.
measure() {
  local name=$1 shown=$2
  shift 2
  local out="$TMP/stdout" err="$TMP/stderr" times="$TMP/time"
  : >"$times"
  (
    ulimit -v 4000000
    exec /usr/bin/time -f '%e %M' -o "$times" timeout "$LIMIT" "$BIN" "$@"
  ) </dev/null >"$out" 2>"$err"
  local code=$?
  local wall peak
  read -r wall peak < <(grep -E '^[0-9.]+ [0-9]+$' "$times" | tail -n 1) || true
  local msg
  msg=$(grep -v '^[[:space:]]*$' "$err" | head -n 1)
  if [[ -z $msg ]]; then
    msg="(stdout) $(grep -v '^[[:space:]]*$' "$out" | tail -n 1)"
  fi
  # Paths inside the temporary folder are shown relative to it.
  msg=${msg//"$TMP/"/}
  msg=${msg//|/\\|}
  ((${#msg} > 160)) && msg="${msg:0:157}..."
  local mark=""
  if [[ $code -gt 3 ]] || [[ $code -ne 0 && -z $(grep -v '^[[:space:]]*$' "$err") ]]; then
    mark=" **(!)**"
    echo "$name $*" >>"$BAD"
  fi
  printf '| %s | %s | %s%s | %s | %s | %s |\n' "$name" "$shown" "$code" "$mark" "$msg" "${wall:--}" \
    "$(if [[ -n ${peak:-} ]]; then echo $((peak / 1024)); else echo -; fi)"
}

# validate and run on one file.
both() {
  local name=$1 file=$2
  shift 2
  [[ -n $FILTER && ! $name =~ $FILTER ]] && return
  measure "$name" "validate" validate "$file"
  measure "$name" "run${*:+ $*}" run "$file" --out "$TMP/out-$name" --force "$@"
}

# Writes the input $1.toml from stdin and runs both commands on it.
case_of() {
  local name=$1
  shift
  [[ -n $FILTER && ! $name =~ $FILTER ]] && { cat >/dev/null; return; }
  cat >"$TMP/$name.toml"
  both "$name" "$TMP/$name.toml" "$@"
}

echo "| input | command | exit | message | time s | peak MB |"
echo "|---|---|---|---|---|---|"

with 'arrival' 'arrival = { process = "poisson", rate_per_s = 0 }' | case_of rate-0
with 'arrival' 'arrival = { process = "poisson", rate_per_s = 1e12 }' | case_of rate-1e12
with 'arrival' 'arrival = { process = "poisson", rate_per_s = 1e-300 }' | case_of rate-1e-300
{ base; printf '\n[network]\nloss_probability = 0\nduplicate_probability = 0\n'; } | case_of probability-0
{ base; printf '\n[network]\nloss_probability = 1\nduplicate_probability = 1\n'; } | case_of probability-1
printf 'name = "empty"\nconcept = "nothing at all"\nseed = 1\n' | case_of empty-topology
{
  base
  printf '\n[[faults]]\nkind = "partition"\nat_ms = 100\ngroups = [["producer"], ["broker", "consumer"]]\n'
} | case_of partition-never-heals
{ base; printf '\n[[faults]]\nkind = "crash"\nnode = "consumer"\nat_ms = 500\nuntil_ms = 100\n'; } |
  case_of window-ends-before-start
base | sed '/^duration_ms/d' |
  awk '/^\[producers.producer\]/ { print; print "messages = 1_000_000_000"; next } { print }' |
  case_of messages-1e9
{
  base
  for i in $(seq 1 10000); do printf '\n[variants.v%d]\ndescription = "variant %d"\n' "$i" "$i"; done
} | case_of variants-10000
{
  printf 'name = "many-producers"\nconcept = "5,000 producers, one broker"\nseed = 1\n\n[run]\nduration_ms = 1_000\n'
  printf '\n[brokers.broker]\nkind = "queue"\n\n[consumers.consumer]\nsource = "broker"\n'
  printf 'processing = { dist = "constant", ms = 0.01 }\nconcurrency = 100\n'
  for i in $(seq 1 5000); do
    printf '\n[producers.p%d]\ntarget = "broker"\narrival = { process = "poisson", rate_per_s = 1 }\n' "$i"
  done
} | case_of producers-5000
{
  printf 'name = "many-consumers"\nconcept = "50,000 consumers with a few links each"\nseed = 1\n\n[run]\nduration_ms = 1_000\n'
  printf '\n[producers.producer]\ntarget = "broker"\narrival = { process = "poisson", rate_per_s = 1000 }\n'
  printf '\n[brokers.broker]\nkind = "queue"\n'
  for i in $(seq 1 50000); do
    printf '\n[consumers.c%d]\nsource = "broker"\nprocessing = { dist = "constant", ms = 1 }\n' "$i"
  done
  for i in $(seq 1 50000); do
    printf '\n[[network.links]]\nfrom = "broker"\nto = "c%d"\nloss_probability = 0.01\n' "$i"
    printf '\n[[network.links]]\nfrom = "c%d"\nto = "broker"\nlatency = { dist = "constant", ms = 2 }\n' "$i"
  done
} | case_of consumers-50000
{
  printf 'name = "huge-topic"\nconcept = "50 topics x 100,000 partitions x 64 replicas"\nseed = 1\n\n[run]\nduration_ms = 1_000\n'
  printf '\n[producers.producer]\ntarget = "log"\ntopic = "t1"\narrival = { process = "poisson", rate_per_s = 100 }\n'
  printf '\n[brokers.log]\nkind = "log"\nreplicas = 64\n'
  printf 'topics = {'
  for i in $(seq 1 50); do printf '%s t%d = { partitions = 100_000 }' "$([[ $i -gt 1 ]] && echo ,)" "$i"; done
  printf ' }\n'
  printf '\n[consumers.reader]\nsource = "log"\ntopic = "t1"\ngroup = "g"\nprocessing = { dist = "constant", ms = 0.1 }\n'
} | case_of topic-50x100000x64
{ base; printf '\nnested = %s1%s\n' "$(printf '[%.0s' $(seq 1 10000))" "$(printf ']%.0s' $(seq 1 10000))"; } |
  case_of nested-arrays-10000
{ base; printf '\nnested = %s1%s\n' "$(printf '{a=%.0s' $(seq 1 10000))" "$(printf '}%.0s' $(seq 1 10000))"; } |
  case_of nested-tables-10000
{
  base
  printf '\n[%s]\n' "$(seq -f 'k%g' -s . 1 10000)"
} | case_of dotted-header-10000
{ printf 'name = "na\xff\xfeme"\n'; base | tail -n +2; } | case_of non-utf8
# The 18 MB file: 300,000 links, each numbered in a comment; over the 16 MiB cap.
{
  base
  awk 'BEGIN { for (i = 0; i < 300000; i++) printf "\n[[network.links]] #%d\nfrom = \"producer\"\nto = \"broker\"\n", i }'
} | case_of links-300000-18MB
# The same links, without the comments: 15 MB, under the cap, so it is read.
{
  base
  awk 'BEGIN { for (i = 0; i < 300000; i++) printf "\n[[network.links]]\nfrom = \"producer\"\nto = \"broker\"\n" }'
} | case_of links-300000-small
with 'duration_ms' $'duration_ms = 1_000\nsample_interval_ms = 0.000001' | case_of sample-interval-1ns
overload_30_days | case_of overload-30-days
if [[ -z $FILTER || overload-30-days-1024 =~ $FILTER ]]; then
  overload_30_days >"$TMP/overload-1024.toml"
  measure overload-30-days "run --max-memory-mb 1024" run "$TMP/overload-1024.toml" --out "$TMP/out-1024" \
    --force --max-memory-mb 1024
fi
{ base; printf '\n[variants."logs/../../../ESCAPED"]\ndescription = "a path"\n'; } |
  case_of variant-escaping --trace
{ base | sed 's/\[consumers.consumer\]/[consumers."a,b"]/'; } | case_of node-name-comma
{ base | sed 's/\[consumers.consumer\]/[consumers."q\\"x"]/'; } | case_of node-name-quote
{ base | sed 's/\[consumers.consumer\]/[consumers."=cmd"]/'; } | case_of node-name-equals
{ base | sed 's/^seed = 1$/seed = 1\nexpect = ["errors_by_kind.rejeted == 0"]/'; } | case_of misspelt-expectation

# Files that are not scenario files.
if [[ -z $FILTER || special =~ $FILTER ]]; then
  mkdir "$TMP/folder.toml"
  both special-directory "$TMP/folder.toml"
  mkfifo "$TMP/fifo.toml"
  # A writer that never writes: opening blocks until a reader comes, so a
  # reader that opened the FIFO would wait forever.
  (exec sleep 1000 >"$TMP/fifo.toml") &
  WRITER=$!
  both special-fifo "$TMP/fifo.toml"
  kill "$WRITER" 2>/dev/null
  WRITER=""
  both special-dev-zero /dev/zero
  both special-dev-urandom /dev/urandom
fi

if [[ -s $BAD ]]; then
  echo "$0: $(wc -l <"$BAD") commands broke the rule (exit 0-3 with a message on stderr)" >&2
  exit 1
fi
exit 0
