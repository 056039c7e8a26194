# The real Kubewarden tools, kwctl and policy-server, for tests, the demo and the benchmark:
# where to find them, how to run them without a network, and policy-server on loopback.
#
#   source tests/lib/kubewarden.bash
#   kwctl=$(kubewarden_find kwctl) || ...    # $KWCTL, else PATH, else ../shared/kubewarden/bin
#   kubewarden_scratch "$dir"                # XDG_CACHE_HOME and XDG_CONFIG_HOME under $dir
#   policy_server_start "$dir" policies.yml  # sets POLICY_SERVER_URL, POLICY_SERVER_LOG, ...
#   policy_server_stop
#
# Nothing here reaches anything but 127.0.0.1 (both tools try to fetch the Sigstore trust root
# at start, fail at once without a network, warn, and go on).

source "$(dirname "${BASH_SOURCE[0]}")/registry.bash"

# The repository this file belongs to, symlinks resolved, so that ../shared is found from a
# worktree or a clone alike.
KUBEWARDEN_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)

# kubewarden_find kwctl|policy-server: prints the absolute path of the tool: $KWCTL or
# $POLICY_SERVER when set (a path or a command name; it must then be found), else the one on PATH,
# else the one in ../shared/kubewarden/bin beside the repository. Fails, printing nothing, when
# there is none.
kubewarden_find() {
  local name=$1 variable override candidate
  case $name in
    kwctl) variable=KWCTL ;;
    policy-server) variable=POLICY_SERVER ;;
    *) echo "kubewarden_find: unknown tool $name" >&2; return 2 ;;
  esac
  override=${!variable:-}
  if [ -n "$override" ]; then
    set -- "$override"
  else
    set -- "$name" "$(cd "$KUBEWARDEN_REPO_ROOT/.." && pwd -P)/shared/kubewarden/bin/$name"
  fi
  for candidate; do
    candidate=$(command -v "$candidate" 2>/dev/null) || continue
    [ -x "$candidate" ] || continue
    case $candidate in /*) ;; *) candidate=$PWD/$candidate ;; esac
    printf '%s\n' "$candidate"
    return 0
  done
  return 1
}

# kubewarden_missing NAME: says where NAME was looked for.
kubewarden_missing() {
  local variable=KWCTL
  [ "$1" = kwctl ] || variable=POLICY_SERVER
  if [ -n "${!variable:-}" ]; then
    printf '%s not found: %s=%s is not an executable\n' "$1" "$variable" "${!variable}"
  else
    printf '%s not found: not on PATH, not in %s; set %s to use another\n' "$1" \
      "$(cd "$KUBEWARDEN_REPO_ROOT/.." && pwd -P)/shared/kubewarden/bin" "$variable"
  fi
}

# kubewarden_scratch DIR: points XDG_CACHE_HOME and XDG_CONFIG_HOME into DIR, so that no run
# depends on what an earlier one left in ~/.cache/kubewarden or ~/.config/kubewarden.
kubewarden_scratch() {
  mkdir -p "$1/cache" "$1/config"
  export XDG_CACHE_HOME=$1/cache XDG_CONFIG_HOME=$1/config
}

# Seconds policy-server gets to become ready (it compiles every module at start).
POLICY_SERVER_START_SECONDS=${POLICY_SERVER_START_SECONDS:-120}

# policy_server_start DIR POLICIES [ARG...]: starts policy-server on free loopback ports with the
# policies file POLICIES (and any further arguments, e.g. --sources-path), its download and
# Sigstore directories and its log (JSON lines, level $POLICY_SERVER_LOG_LEVEL, default info) in
# DIR, and waits until it is ready.
# Sets POLICY_SERVER_PID, POLICY_SERVER_URL (http://127.0.0.1:PORT) and POLICY_SERVER_LOG.
# Fails when the server exits first (POLICY_SERVER_STATUS then holds its exit status) or is not
# ready in time; the log stays for the caller to read. (File descriptor 3 is closed for the
# server: bats waits for whoever holds it open.)
policy_server_start() {
  local dir=$1 policies=$2 server port probe_port deadline
  shift 2
  server=$(kubewarden_find policy-server) || { kubewarden_missing policy-server >&2; return 1; }
  mkdir -p "$dir/downloads" "$dir/sigstore"
  port=$(registry_free_port)
  probe_port=$(registry_free_port)
  POLICY_SERVER_LOG=$dir/policy-server.log
  POLICY_SERVER_URL=http://127.0.0.1:$port
  unset POLICY_SERVER_STATUS
  "$server" --addr 127.0.0.1 --port "$port" --readiness-probe-port "$probe_port" \
    --policies "$policies" --policies-download-dir "$dir/downloads" \
    --sigstore-cache-dir "$dir/sigstore" --ignore-kubernetes-connection-failure \
    --log-level "${POLICY_SERVER_LOG_LEVEL:-info}" --log-fmt json --log-no-color "$@" >"$POLICY_SERVER_LOG" 2>&1 3>&- &
  POLICY_SERVER_PID=$!
  export POLICY_SERVER_PID POLICY_SERVER_URL POLICY_SERVER_LOG
  deadline=$((SECONDS + POLICY_SERVER_START_SECONDS))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$POLICY_SERVER_PID" 2>/dev/null; then
      POLICY_SERVER_STATUS=0
      wait "$POLICY_SERVER_PID" || POLICY_SERVER_STATUS=$?
      unset POLICY_SERVER_PID
      return 1
    fi
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$probe_port/readiness" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "policy-server was not ready after $POLICY_SERVER_START_SECONDS s" >&2
  policy_server_stop
  return 1
}

# Stops the policy-server started by policy_server_start (if any), and waits for it to go.
policy_server_stop() {
  [ -n "${POLICY_SERVER_PID:-}" ] || return 0
  kill "$POLICY_SERVER_PID" 2>/dev/null || true
  wait "$POLICY_SERVER_PID" 2>/dev/null || true
  unset POLICY_SERVER_PID
}

# policy-server 1.35 refuses a request body over 2 MiB (axum's default limit) with HTTP 413,
# before any policy sees it.
POLICY_SERVER_MAX_BODY_BYTES=2097152

# policy_server_validate POLICY_ID BODY_FILE OUT_FILE: posts an AdmissionReview to
# /validate/POLICY_ID; the answer goes to OUT_FILE, the HTTP status to stdout.
policy_server_validate() {
  curl -sS --max-time 60 -o "$3" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "@$2" "$POLICY_SERVER_URL/validate/$1"
}

# admission_review REQUEST_FILE: the file as an AdmissionReview to post. A request file is either
# a whole AdmissionReview (kwctl run takes both) or a bare AdmissionRequest, which is wrapped as
# text, so that its bytes reach the server as written.
admission_review() {
  if jq -e '.kind == "AdmissionReview"' "$1" >/dev/null 2>&1; then
    cat "$1"
  else
    printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":'
    cat "$1"
    printf '}'
  fi
}
