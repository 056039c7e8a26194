#!/usr/bin/env bash
# scripts/check-release.sh [TAG]: the release's version is said the same everywhere: the tag (when
# given, vX.Y.Z), Cargo.toml, metadata.yml, artifacthub-pkg.yml and every versioned module reference
# (`…/image-pull-policy:vX.Y.Z`) in the README and artifacthub-pkg.yml. RELEASE_ROOT: the tree to
# check (the repository by default).
set -euo pipefail
root=${RELEASE_ROOT:-"$(dirname "$0")/.."}
tag=${1:-}
problems=()

field() { # FILE SED-EXPRESSION: the first value the expression prints, or nothing
  [ -f "$root/$1" ] && sed -n "$2" "$root/$1" | head -n 1 || true
}

version=$(field Cargo.toml 's/^version = "\([^"]*\)"$/\1/p')
if [ -z "$version" ]; then
  echo "check-release: no version in $root/Cargo.toml" >&2
  exit 1
fi

if [ -n "$tag" ] && [ "$tag" != "v$version" ]; then
  problems+=("the tag $tag is not v$version, the version in Cargo.toml")
fi

metadata=$(field metadata.yml 's/^ *io\.kubewarden\.policy\.version: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p')
[ "$metadata" = "$version" ] ||
  problems+=("metadata.yml: io.kubewarden.policy.version is '${metadata}', Cargo.toml says $version")

artifacthub=$(field artifacthub-pkg.yml 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p')
[ "$artifacthub" = "$version" ] ||
  problems+=("artifacthub-pkg.yml: version is '${artifacthub}', Cargo.toml says $version")

for file in README.md artifacthub-pkg.yml; do
  refs=$( (grep -on 'image-pull-policy:v[0-9][0-9A-Za-z.+-]*' "$root/$file" || true) | sed 's/:image-pull-policy:/: /')
  if [ -z "$refs" ]; then
    problems+=("$file: no module reference (…/image-pull-policy:v$version)")
    continue
  fi
  while read -r line ref; do
    [ "$ref" = "v$version" ] ||
      problems+=("$file:${line%:}: the module reference says $ref, Cargo.toml says v$version")
  done <<<"$refs"
done

if ((${#problems[@]})); then
  printf 'check-release: %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "check-release: v$version${tag:+ (tag $tag)} in Cargo.toml, metadata.yml, artifacthub-pkg.yml and the README"
