#!/usr/bin/env bats
# scripts/check-release.sh on a copy of the files it reads: it passes on the repository as it is
# and fails, naming the file, on each way the version can disagree.

REPO="$(cd "$BATS_TEST_DIRNAME/.." && pwd)"
CHECK="$REPO/scripts/check-release.sh"

setup() {
  export RELEASE_ROOT="$BATS_TEST_TMPDIR/tree"
  mkdir -p "$RELEASE_ROOT"
  cp "$REPO"/{Cargo.toml,metadata.yml,artifacthub-pkg.yml,README.md} "$RELEASE_ROOT/"
  VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -n 1)
}

# Another version, of the same shape.
other_version() { echo "9.${VERSION#*.}"; }

@test "the repository agrees with itself, with and without its tag" {
  run "$CHECK"
  [ "$status" -eq 0 ] || { echo "$output"; false; }
  run "$CHECK" "v$VERSION"
  [ "$status" -eq 0 ] || { echo "$output"; false; }
}

@test "a tag that is not Cargo.toml's version fails" {
  run "$CHECK" "v$(other_version)"
  [ "$status" -eq 1 ]
  [[ "$output" == *"the tag v$(other_version) is not v$VERSION"* ]] || { echo "$output"; false; }
}

@test "a bumped Cargo.toml with nothing else bumped fails on every other file" {
  sed -i "0,/^version = \"$VERSION\"/s//version = \"$(other_version)\"/" "$RELEASE_ROOT/Cargo.toml"
  run "$CHECK" "v$(other_version)"
  [ "$status" -eq 1 ]
  [[ "$output" == *"metadata.yml: io.kubewarden.policy.version is '$VERSION'"* ]] || { echo "$output"; false; }
  [[ "$output" == *"artifacthub-pkg.yml: version is '$VERSION'"* ]] || { echo "$output"; false; }
  [[ "$output" == *"README.md:"*"the module reference says v$VERSION"* ]] || { echo "$output"; false; }
}

@test "one stale module reference in the README fails, with its line" {
  printf '\n    module: registry://ghcr.io/OWNER/policies/image-pull-policy:v%s\n' "$(other_version)" \
    >>"$RELEASE_ROOT/README.md"
  line=$(wc -l <"$RELEASE_ROOT/README.md")
  run "$CHECK"
  [ "$status" -eq 1 ]
  [[ "$output" == *"README.md:$line: the module reference says v$(other_version)"* ]] || { echo "$output"; false; }
}

@test "artifacthub-pkg.yml's own version out of step fails" {
  sed -i "s/^version: .*/version: $(other_version)/" "$RELEASE_ROOT/artifacthub-pkg.yml"
  run "$CHECK"
  [ "$status" -eq 1 ]
  [[ "$output" == *"artifacthub-pkg.yml: version is '$(other_version)'"* ]] || { echo "$output"; false; }
}

@test "a README without a module reference fails" {
  sed -i '/image-pull-policy:v/d' "$RELEASE_ROOT/README.md"
  run "$CHECK"
  [ "$status" -eq 1 ]
  [[ "$output" == *"README.md: no module reference"* ]] || { echo "$output"; false; }
}
