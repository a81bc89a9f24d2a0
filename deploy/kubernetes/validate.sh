#!/usr/bin/env bash
# Renders every overlay under deploy/kubernetes/overlays, validates it against the Kubernetes
# schemas of each version in $K8S_VERSIONS (--strict; default the supported minimum, 1.30.0,
# where preStop.sleep is on by default, and 1.37.0, the newest kubernetes-validate knows;
# K8S_VERSION=x.y.z checks one) and runs structural checks on it (rollout
# strategy, probes, securityContext, resources, ...: check_manifests.py, shared with the Helm
# chart's test), then checkov (../checkov.yaml). Prints OK lines per overlay; exits nonzero on
# the first overlay that fails.
#
# Usage (from the repository root): bash deploy/kubernetes/validate.sh
# Needs: kubectl (for `kubectl kustomize`; $KUBECTL, default the 1.33 one of the Google Cloud
# SDK), kubernetes-validate (pip), checkov ($CHECKOV, default `checkov`), python3 with PyYAML.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The minimum is README's ("Kubernetes"): 1.29's schema has preStop.sleep too, but behind an
# alpha feature gate that is off, so the schemas alone cannot reject 1.29.
k8s_versions="${K8S_VERSIONS:-${K8S_VERSION:-1.30.0 1.37.0}}"

if [[ -z "${KUBECTL:-}" ]]; then
  KUBECTL=/usr/lib/google-cloud-sdk/bin/kubectl.1.33
  [[ -x "$KUBECTL" ]] || KUBECTL=kubectl
fi

fail() {
  echo "validate.sh: $*" >&2
  exit 1
}

command -v "$KUBECTL" >/dev/null || fail "kubectl not found (set KUBECTL)"
command -v kubernetes-validate >/dev/null || fail "kubernetes-validate not found (pip install kubernetes-validate)"
CHECKOV="${CHECKOV:-checkov}"
command -v "$CHECKOV" >/dev/null || fail "checkov not found (set CHECKOV; .ci/run installs it in its own virtualenv)"
python3 -c 'import yaml' 2>/dev/null || fail "python3 cannot import yaml (install PyYAML)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for overlay_dir in "$here"/overlays/*/; do
  overlay="$(basename "$overlay_dir")"
  rendered="$tmp/$overlay.yaml"

  # `kubectl kustomize` renders locally; it never contacts a cluster.
  "$KUBECTL" kustomize "$overlay_dir" >"$rendered" || fail "$overlay: kustomize failed"

  # Schema validation. A missing schema is only a warning to kubernetes-validate, which would
  # let a mistyped apiVersion through: only the Prometheus Operator's and cert-manager's CRDs
  # may lack one (kubernetes-validate ships the built-in kinds' schemas only); the checks
  # below read the fields of theirs that matter here.
  for k8s_version in $k8s_versions; do
    report="$tmp/$overlay.validate"
    rc=0
    kubernetes-validate --strict --quiet -k "$k8s_version" "$rendered" >"$report" 2>&1 || rc=$?
    unexpected="$(grep -v -e "Couldn't find schema for kind ServiceMonitor with api version monitoring.coreos.com/v1" \
      -e "Couldn't find schema for kind PrometheusRule with api version monitoring.coreos.com/v1" \
      -e "Couldn't find schema for kind Probe with api version monitoring.coreos.com/v1" \
      -e "Couldn't find schema for kind Certificate with api version cert-manager.io/v1" \
      -e "Couldn't find schema for kind Issuer with api version cert-manager.io/v1" "$report" || true)"
    if [[ -n "$unexpected" ]]; then
      sed "s|$rendered|$overlay|" <<<"$unexpected" >&2
    fi
    if [[ $rc -ne 0 || -n "$unexpected" ]]; then
      fail "$overlay: schema validation failed (Kubernetes $k8s_version, strict)"
    fi
  done

  python3 "$here/check_manifests.py" "$rendered" "$overlay" --overlay --k8s-versions "${k8s_versions// /, }"

  # checkov's Kubernetes checks, but for the ones ../checkov.yaml skips and says why; an
  # overlay without digests (dev) also skips the digest and pull-policy checks.
  skips="$(python3 -c 'import sys, yaml; print(",".join(yaml.safe_load(open(sys.argv[1]))["skip-check"]))' "$here/../checkov.yaml")"
  [[ "$overlay" == prod ]] || skips="$skips,CKV_K8S_43,CKV_K8S_15"
  if ! "$CHECKOV" --config-file "$here/../checkov.yaml" --skip-download --skip-check "$skips" \
    -f "$rendered" >"$tmp/$overlay.checkov" 2>&1; then
    sed "s|$rendered|$overlay|" "$tmp/$overlay.checkov" >&2
    fail "$overlay: checkov failed"
  fi
  echo "OK $overlay: checkov $(grep -o 'Passed checks: [0-9]*, Failed checks: [0-9]*' "$tmp/$overlay.checkov")"
done
