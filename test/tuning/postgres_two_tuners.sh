#!/usr/bin/env bash
# Two kiln-tune runs (GA and random search) into one real PostgreSQL server at once,
# then kiln-compile reading it: every trial of both is recorded, both sessions are
# there, and two compiles give the same bytes. The server is Debian's, initialized into
# a temporary directory, listening only on a Unix socket there. Exit 77 (ctest: skipped)
# without PostgreSQL's server binaries.
#   postgres_two_tuners.sh BIN_DIR SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [[ -z $pgbin || ! -x $pgbin/initdb ]]; then
  echo "postgres_two_tuners: no PostgreSQL server binaries (apt install postgresql); skipped"
  exit 77
fi
work=$(mktemp -d)
chmod 755 "$work"
# initdb refuses to run as root: the server then runs as the postgres account.
as_server=()
if [[ $(id -u) == 0 ]]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "postgres_two_tuners: running as root without a postgres account; skipped"
    exit 77
  fi
  as_server=(runuser -u postgres --)
  mkdir -p "$work/pg" "$work/socket"
  chown postgres "$work/pg" "$work/socket"
else
  mkdir -p "$work/pg" "$work/socket"
fi
stop() {
  "${as_server[@]}" "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop EXIT
port=$((20000 + RANDOM % 20000))
"${as_server[@]}" "$pgbin/initdb" -D "$work/pg" -A trust -U kiln >"$work/initdb.log" 2>&1 ||
  { cat "$work/initdb.log"; exit 1; }
"${as_server[@]}" "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/server.log" -w \
  -o "-c listen_addresses='' -k $work/socket -p $port" start >/dev/null ||
  { cat "$work/pg/server.log"; exit 1; }
"${as_server[@]}" "$pgbin/createdb" -h "$work/socket" -p "$port" -U kiln tuning
url="postgresql://kiln@/tuning?host=$work/socket&port=$port"

model=$src/examples/models/mlp.onnx
input=$src/examples/models/mlp-input.npy
"$bin/kiln-tune" "$model" --budget 25s --runs 5 --threads 1 --min-share 0.3 --input "$input" \
  --tuning-db "$url" >"$work/ga.txt" 2>"$work/ga.err" &
ga=$!
"$bin/kiln-tune" "$model" --budget 25s --runs 5 --threads 1 --min-share 0.3 --input "$input" --search random \
  --tuning-db "$url" >"$work/random.txt" 2>"$work/random.err" &
random=$!
wait $ga || { cat "$work/ga.err"; exit 1; }
wait $random || { cat "$work/random.err"; exit 1; }

psql=("$pgbin/psql" -h "$work/socket" -p "$port" -U kiln -d tuning -At)
sessions=$("${psql[@]}" -c "SELECT count(DISTINCT session) FROM kiln_trials")
searches=$("${psql[@]}" -c "SELECT string_agg(DISTINCT search, ' ' ORDER BY search) FROM kiln_trials")
best=$("${psql[@]}" -c "SELECT count(*) FROM kiln_best_schedules")
# Each tuner's search trials, as its per-kernel lines report them ("...: 9 trials (0
# failed), ...").
recorded=$("${psql[@]}" -c "SELECT count(*) FROM kiln_trials WHERE search IN ('ga', 'random')")
reported=$(grep -ho '): [0-9]* trials (' "$work/ga.err" "$work/random.err" |
  awk '{ sum += $2 } END { print sum + 0 }')
echo "sessions: $sessions; searches: $searches; kernels with a best schedule: $best"
echo "search trials recorded: $recorded; reported by the tuners: $reported"
[[ $sessions == 2 && $searches == "confirm ga random" && $best -ge 1 && $recorded == "$reported" ]] ||
  { echo "postgres_two_tuners: unexpected database contents"; cat "$work/ga.txt" "$work/random.txt"; exit 1; }

"$bin/kiln-compile" "$model" --tuning-db "$url" -o "$work/a.kiln" 2>/dev/null
"$bin/kiln-compile" "$model" --tuning-db "$url" -o "$work/b.kiln" 2>/dev/null
cmp "$work/a.kiln" "$work/b.kiln"
[[ $("${psql[@]}" -c "SELECT count(*) FROM kiln_trials WHERE search IN ('ga', 'random')") == "$recorded" ]]
"$bin/kiln-compile" "$model" --tuning-db "$url" --emit=mlir -o "$work/tuned.mlir" 2>/dev/null
grep -q 'kiln.schedule = "vector_width=' "$work/tuned.mlir"

# Another application's kiln_trials table: an error naming the database, nothing created.
"${as_server[@]}" "$pgbin/createdb" -h "$work/socket" -p "$port" -U kiln other
"$pgbin/psql" -h "$work/socket" -p "$port" -U kiln -d other -q -c "CREATE TABLE kiln_trials(x INTEGER)"
"$bin/kiln-tune" --export "$work/schedules.jsonl" --tuning-db "$url" 2>/dev/null
if "$bin/kiln-tune" --import "$work/schedules.jsonl" \
    --tuning-db "postgresql://kiln@/other?host=$work/socket&port=$port" 2>"$work/foreign.err"; then
  echo "postgres_two_tuners: a foreign kiln_trials table was accepted"
  exit 1
fi
grep -q "has a kiln_trials table but no kiln_tuning_schema: not a kiln tuning database" "$work/foreign.err" ||
  { cat "$work/foreign.err"; exit 1; }
[[ $("$pgbin/psql" -h "$work/socket" -p "$port" -U kiln -d other -At \
  -c "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'kiln_%'") == 1 ]]
echo "postgres_two_tuners: ok"
