# The requests both benchmarks send, sourced by bench/run.sh and bench/server.sh.

# bench_requests DIR: sets `requests` to $REQUESTS (space-separated files) when given, else to
# every request of bench/requests/ plus a Pod of $BIG_CONTAINERS containers, generated into DIR
# (0 leaves it out).
bench_requests() {
  local dir=$1 big
  if [[ -n "${REQUESTS:-}" ]]; then
    read -r -a requests <<<"$REQUESTS"
    return
  fi
  requests=(
    bench/requests/pod-one-container.json
    bench/requests/deployment-kubectl-apply.json
    bench/requests/cronjob.json
    bench/requests/pod-mutated.json
    bench/requests/pod-rejected-many.json
    bench/requests/pod-50-containers.json
  )
  if ((BIG_CONTAINERS > 0)); then
    big="$dir/pod-$BIG_CONTAINERS-containers.json"
    if [[ ! -s "$big" || bench/requests/generate.sh -nt "$big" ]]; then
      echo "== generating $big" >&2
      mkdir -p "$dir"
      bench/requests/generate.sh pod-n "$BIG_CONTAINERS" "$big"
    fi
    requests+=("$big")
  fi
}
