# How e2e.bats runs the engine it is given as KWCTL: the project's host (target/host/policy-host)
# or the real kwctl; loaded by e2e.bats after it has set KWCTL.
#
# E2E_RECORD=DIR writes every engine run down, one JSON object a line in DIR/runs.jsonl: the test,
# the arguments, the request and settings, the exit status, stdout and stderr. A request made in
# setup_file is copied to DIR/requests/. tests/engines.bats replays these runs through
# policy-server and compares the engines' answers, so that every case of e2e.bats is a
# three-engine case without being written twice.

# bats sources e2e.bats again in each test's process, which inherits an exported KWCTL.
if [ "$KWCTL" != e2e_recorded_engine ]; then
  export E2E_ENGINE=$KWCTL
fi
if [ -n "${E2E_RECORD:-}" ]; then
  KWCTL=e2e_recorded_engine
fi

# True when the engine is the project's host rather than a real Kubewarden tool.
e2e_engine_is_project_host() {
  [ "$(basename "$E2E_ENGINE")" = policy-host ]
}

# Called by setup_file: a fresh record, and kwctl's caches in the file's scratch directory.
e2e_engine_setup_file() {
  export XDG_CACHE_HOME="$BATS_FILE_TMPDIR/xdg-cache" XDG_CONFIG_HOME="$BATS_FILE_TMPDIR/xdg-config"
  if [ -n "${E2E_RECORD:-}" ]; then
    rm -rf "$E2E_RECORD"
    mkdir -p "$E2E_RECORD/requests"
    : >"$E2E_RECORD/runs.jsonl"
  fi
}

# Called by setup: under a real engine, skips a test that uses a fixture of HOST_ONLY
# (fixture file name → why), naming the reason, and writes the skip down when recording.
e2e_engine_setup() {
  e2e_engine_is_project_host && return 0
  local body fixture
  body=$(declare -f "$BATS_TEST_NAME")
  for fixture in "${!HOST_ONLY[@]}"; do
    if [[ "$body" == *"/$fixture"* ]]; then
      if [ -n "${E2E_RECORD:-}" ]; then
        jq -nc --arg test "$BATS_TEST_DESCRIPTION" --arg why "$fixture: ${HOST_ONLY[$fixture]}" \
          '{test: $test, skipped: $why}' >>"$E2E_RECORD/runs.jsonl"
      fi
      skip "project host only: $fixture: ${HOST_ONLY[$fixture]}"
    fi
  done
}

# The engine, with each run written down (see E2E_RECORD above).
e2e_recorded_engine() {
  local out err status=0
  out=$(mktemp "$BATS_TEST_TMPDIR/engine-stdout.XXXXXX")
  err=$(mktemp "$BATS_TEST_TMPDIR/engine-stderr.XXXXXX")
  "$E2E_ENGINE" "$@" >"$out" 2>"$err" || status=$?
  e2e_record_run "$status" "$out" "$err" "$@" || {
    echo "e2e: cannot write this run down in $E2E_RECORD" >&2
    status=125
  }
  cat "$out"
  cat "$err" >&2
  return "$status"
}

# e2e_record_run STATUS STDOUT_FILE STDERR_FILE ARG...: appends one run to runs.jsonl.
e2e_record_run() {
  local status=$1 out=$2 err=$3 request="" settings_json="" settings_path="" run
  shift 3
  local named=() i
  for i in $(seq "$#"); do
    named+=(--arg "$(printf 'arg%03d' "$i")" "${!i}")
  done
  while (($#)); do
    case $1 in
      -r | --request-path) request=$2; shift ;;
      -s | --settings-json) settings_json=$2; shift ;;
      --settings-path) settings_path=$2; shift ;;
    esac
    shift
  done
  run=$(($(wc -l <"$E2E_RECORD/runs.jsonl") + 1))
  # A request from outside the repository (built in setup_file) will be gone when the runs are
  # replayed.
  if [ -n "$request" ] && [[ "$request" == /* ]] && [[ "$request" != "$PWD"/* ]]; then
    cp "$request" "$E2E_RECORD/requests/$run-$(basename "$request")" || return 1
    request="$E2E_RECORD/requests/$run-$(basename "$request")"
  fi
  jq -nc --arg test "$BATS_TEST_DESCRIPTION" --argjson run "$run" --argjson status "$status" \
    --arg request "$request" --arg settings_json "$settings_json" --arg settings_path "$settings_path" \
    --rawfile stdout "$out" --rawfile stderr "$err" "${named[@]}" '{
      run: $run, test: $test, request: $request,
      args: [$ARGS.named | to_entries[] | select(.key | test("^arg[0-9]+$"))] | sort_by(.key) | map(.value),
      settings: (if $settings_json != "" then {json: $settings_json}
                 elif $settings_path != "" then {path: $settings_path} else null end),
      status: $status, stdout: $stdout, stderr: $stderr[-8000:]
    }' >>"$E2E_RECORD/runs.jsonl"
}
