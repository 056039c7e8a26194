# A real OCI registry (the CNCF distribution registry, Debian's `docker-registry`) on loopback,
# for tests: start and stop it, and put test images into it over the distribution API.
#
#   source tests/lib/registry.bash
#   registry_start "$dir"                 # sets REGISTRY=127.0.0.1:PORT, REGISTRY_LOG, REGISTRY_SOURCES
#   registry_start "$dir" alice secret    # the same, behind basic auth (REGISTRY_AUTH=alice:secret)
#   digest=$(registry_push_image app 1.0 "some content")
#   index=$(registry_push_index app multi)
#   registry_stop
#
# Nothing here reaches anything but 127.0.0.1.

# A TCP port on 127.0.0.1 that nothing listens on right now.
registry_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# registry_start DIR [USER PASSWORD]: serves a new, empty registry whose storage, config and log
# live in DIR; with USER and PASSWORD, only to them (basic auth, htpasswd). Exports REGISTRY
# (host:port), REGISTRY_PID, REGISTRY_LOG, REGISTRY_SOURCES (a sources file that lets kwctl and
# policy-server use the registry over plain HTTP) and REGISTRY_AUTH (USER:PASSWORD, or empty),
# which the functions below send.
registry_start() {
  local dir=$1 user=${2:-} password=${3:-} port i auth_config=
  command -v docker-registry >/dev/null || {
    echo "docker-registry is not installed (Debian package docker-registry)" >&2
    return 1
  }
  mkdir -p "$dir/storage"
  port=$(registry_free_port)
  REGISTRY_AUTH=
  if [ -n "$user" ]; then
    command -v htpasswd >/dev/null || {
      echo "htpasswd is not installed (Debian package apache2-utils)" >&2
      return 1
    }
    htpasswd -cbB "$dir/htpasswd" "$user" "$password" 2>/dev/null
    auth_config="auth:
  htpasswd:
    realm: test-registry
    path: $dir/htpasswd"
    REGISTRY_AUTH=$user:$password
  fi
  cat >"$dir/registry.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$auth_config
EOF
  REGISTRY_LOG=$dir/registry.log
  # The registry reads REGISTRY_<SECTION>_... variables as configuration (REGISTRY_LOG would
  # replace its `log` section, REGISTRY_AUTH its `auth`): an earlier registry_start's exports must
  # not reach it.
  env -u REGISTRY -u REGISTRY_PID -u REGISTRY_LOG -u REGISTRY_SOURCES -u REGISTRY_AUTH \
    docker-registry serve "$dir/registry.yml" >"$REGISTRY_LOG" 2>&1 &
  REGISTRY_PID=$!
  REGISTRY=127.0.0.1:$port
  REGISTRY_SOURCES=$dir/sources.yml
  printf 'insecure_sources:\n  - "%s"\n' "$REGISTRY" >"$REGISTRY_SOURCES"
  export REGISTRY REGISTRY_PID REGISTRY_LOG REGISTRY_SOURCES REGISTRY_AUTH
  for i in $(seq 100); do
    registry_curl -fsS -o /dev/null "http://$REGISTRY/v2/" 2>/dev/null && return 0
    kill -0 "$REGISTRY_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "the registry did not start; its log:" >&2
  cat "$REGISTRY_LOG" >&2
  registry_stop
  return 1
}

# Stops the registry started by registry_start (if any), and waits for it to go.
registry_stop() {
  [ -n "${REGISTRY_PID:-}" ] || return 0
  kill "$REGISTRY_PID" 2>/dev/null || true
  wait "$REGISTRY_PID" 2>/dev/null || true
  unset REGISTRY_PID
}

# curl, with the registry's credentials when it has some.
registry_curl() {
  if [ -n "${REGISTRY_AUTH:-}" ]; then
    curl -u "$REGISTRY_AUTH" "$@"
  else
    curl "$@"
  fi
}

# sha256:<hex> of a file.
registry_digest_of() {
  printf 'sha256:%s' "$(sha256sum "$1" | cut -d' ' -f1)"
}

# registry_push_blob REPO FILE: uploads FILE as a blob of REPO; prints its digest.
registry_push_blob() {
  local repo=$1 file=$2 digest location
  digest=$(registry_digest_of "$file")
  location=$(registry_curl -fsS -X POST -D - -o /dev/null "http://$REGISTRY/v2/$repo/blobs/uploads/" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  [ -n "$location" ] || { echo "no upload location for $repo" >&2; return 1; }
  case $location in http*) ;; *) location=http://$REGISTRY$location ;; esac
  case $location in *\?*) location=$location\&digest=$digest ;; *) location=$location\?digest=$digest ;; esac
  registry_curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" -o /dev/null "$location"
  printf '%s\n' "$digest"
}

# registry_push_manifest REPO REFERENCE FILE MEDIA_TYPE: puts a manifest (or index) under a tag
# or digest; prints its digest.
registry_push_manifest() {
  local repo=$1 reference=$2 file=$3 media_type=$4
  registry_curl -fsS -X PUT -H "Content-Type: $media_type" --data-binary "@$file" -o /dev/null \
    "http://$REGISTRY/v2/$repo/manifests/$reference"
  registry_digest_of "$file"
  echo
}

# registry_push_image REPO TAG [CONTENT] [ARCH]: a single-platform OCI image whose one layer
# holds CONTENT; prints the manifest's digest. Different CONTENT gives a different digest.
registry_push_image() {
  local repo=$1 tag=$2 content=${3:-$1:$2} arch=${4:-amd64} work config layer config_digest layer_digest
  work=$(mktemp -d)
  printf '%s' "$content" >"$work/layer"
  printf '{"architecture":"%s","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$arch" "$(registry_digest_of "$work/layer")" >"$work/config"
  config_digest=$(registry_push_blob "$repo" "$work/config") || return 1
  layer_digest=$(registry_push_blob "$repo" "$work/layer") || return 1
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
    "$config_digest" "$(stat -c %s "$work/config")" "$layer_digest" "$(stat -c %s "$work/layer")" >"$work/manifest"
  registry_push_manifest "$repo" "$tag" "$work/manifest" application/vnd.oci.image.manifest.v1+json
  rm -rf "$work"
}

# registry_push_index REPO TAG [CONTENT]: a multi-platform image (an OCI index over an amd64
# and an arm64 manifest); prints the index's digest.
registry_push_index() {
  local repo=$1 tag=$2 content=${3:-$1:$2} work amd64 arm64 size_amd64 size_arm64
  work=$(mktemp -d)
  amd64=$(registry_push_image "$repo" "$tag-amd64" "$content/amd64" amd64) || return 1
  arm64=$(registry_push_image "$repo" "$tag-arm64" "$content/arm64" arm64) || return 1
  size_amd64=$(registry_curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/$repo/manifests/$amd64" | wc -c)
  size_arm64=$(registry_curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/$repo/manifests/$arm64" | wc -c)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"platform":{"architecture":"arm64","os":"linux"}}]}' \
    "$amd64" "$size_amd64" "$arm64" "$size_arm64" >"$work/index"
  registry_push_manifest "$repo" "$tag" "$work/index" application/vnd.oci.image.index.v1+json
  rm -rf "$work"
}

# registry_tag_digest REPO TAG: the digest the registry serves for REPO:TAG (from its
# Docker-Content-Digest header), as a client resolving the tag would see it.
registry_tag_digest() {
  registry_curl -fsS -I \
    -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://$REGISTRY/v2/$1/manifests/$2" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}
