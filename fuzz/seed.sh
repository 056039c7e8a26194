#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from test_data/ and a list of interesting image references.
# The corpus directories are git-ignored; this script is what is committed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="$here/../test_data"
corpus="$here/corpus"
mkdir -p "$corpus/validate_request" "$corpus/validate_settings" "$corpus/image_reference" \
         "$corpus/validate_structured" "$corpus/request_view"

# validate_request: each request (an AdmissionReview's .request unwrapped) with default
# settings, then with each settings fixture.
python3 - "$data" "$corpus/validate_request" <<'PY'
import json, pathlib, sys
data, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
settings = [("default", {})]
for f in sorted((data / "settings").glob("*.json")):
    settings.append((f.stem, json.loads(f.read_text())))
for f in sorted(data.glob("*.json")):
    value = json.loads(f.read_text())
    request = value.get("request", value) if isinstance(value, dict) else value
    for name, s in settings:
        # compact and pretty forms: the fuzzer mutates both well
        payload = {"request": request, "settings": s}
        (out / f"{f.stem}--{name}.json").write_text(json.dumps(payload))
    (out / f"{f.stem}--pretty.json").write_text(json.dumps({"request": request, "settings": {}}, indent=1))
PY

# request_view: the same payloads, read by the request reader and by serde.
cp "$corpus"/validate_request/* "$corpus/request_view/"

# validate_settings: every settings fixture, plus a few edge cases.
cp "$data"/settings/*.json "$corpus/validate_settings/"
printf '%s' '{}' > "$corpus/validate_settings/empty-object"
printf '%s' 'null' > "$corpus/validate_settings/null"
printf '%s' '{"mode":"warn","requireTag":false,"deniedTags":["dev","edge"],"requireDigest":true,"requireAlwaysForDigests":false,"exemptImages":["registry.example.com/*"],"exemptContainers":["istio-?roxy"],"mutateTemplates":false}' \
  > "$corpus/validate_settings/every-key"
printf '%s' '{"mo\u0064e":"reject","mode":"warn"}' > "$corpus/validate_settings/escaped-duplicate"
# deniedTags patterns at the edges of what a tag can match, and requireFullVersion.
printf '%s' '{"requireFullVersion":true,"deniedTags":["*","?","*-SNAPSHOT","v?.*","*.x","*-","2???????"]}' \
  > "$corpus/validate_settings/tag-patterns"
printf '%s' '{"deniedTags":["-x","*-x",".*","a:*","*/*","é*",""],"requireFullVersion":"true"}' \
  > "$corpus/validate_settings/impossible-tag-patterns"

# image_reference: references that exercise every part of the grammar.
python3 - "$corpus/image_reference" <<'PY'
import pathlib, sys
out = pathlib.Path(sys.argv[1])
h = "0123456789abcdef" * 8
refs = [
    "", "nginx", "nginx:1.27", "nginx:latest", "NGINX:1.27", "Nginx", "library/nginx",
    "docker.io/nginx", "docker.io/library/nginx:latest", "index.docker.io/foo/bar:1",
    "localhost", "localhost:5000", "localhost/app", "localhost:5000/app", "localhost:5000/app:v1",
    "[::1]:5000/app:v1", "[::1]/app", "[2001:db8::1]:443/team/app@sha256:" + h[:64],
    "127.0.0.1:5000/app:v1", "example.com:5000/team/app", "ghcr.io/owner/app:v1",
    "app@sha256:" + h[:64], "app:1.0@sha256:" + h[:64], "app@sha512:" + h[:128],
    "app@sha384:" + h[:96], "app@sha256:abc", "app@SHA256:" + h[:64], "app@sha256:" + h[:64].upper(),
    "a" * 64, h[:64], h[:64] + ":v1", "a__b/c.d/e-f:_x", "x" * 250, "a:" + "t" * 128,
    "a:" + "t" * 129, "foo.com", "test.com:5000", "Registry.Example.COM/app:1", "a/b@", "@", ":",
    "a:", "/a", "a/", "a//b", "a b", "caf\u00e9:1", "\u0130stanbul/app",
    "app:1", "app:v1.2", "app:1.2.3-alpine", "app:1.2.3.4", "app:20240101", "app:3f2a9c1",
    "app:1.2-", "app:V1_rc", "app:1.2@sha256:" + h[:64],
]
for i, ref in enumerate(refs):
    (out / f"ref-{i:02}").write_text(ref)
PY
# Inputs that once broke a target's invariants (false alarms included) stay in its corpus.
for dir in "$here"/findings/*/; do
    target="$(basename "$dir")"
    mkdir -p "$corpus/$target"
    cp "$dir"* "$corpus/$target/" 2>/dev/null || true
done

echo "seeded: $(for d in "$corpus"/*; do printf '%s=%s ' "$(basename "$d")" "$(ls "$d" | wc -l)"; done)"
