"""Tests of the Helm chart deploy/helm/sre-service, with the real Helm v4 engine as a library
(PyPI helm-python-sdk; no helm binary, no cluster).

For every service and every profile (the chart's defaults, prod-like, review) the chart lints
clean and renders manifests that pass kubernetes-validate (strict, Kubernetes 1.30 and 1.37),
the structural checks the Kustomize overlays pass (../kubernetes/check_manifests.py) and
checkov. The prod-like rendering equals the Kustomize prod overlay's objects field for field,
so the two cannot drift; bad values are refused with a message that names the field.

Run from the repository root: python3 -m unittest discover -s deploy/helm -v
Needs: helm-python-sdk, kubernetes-validate and PyYAML (pip), kubectl (`kubectl kustomize`;
$KUBECTL), checkov ($CHECKOV, default `checkov`). Under CI (CI set) a missing tool fails the
test; elsewhere it skips it.
"""

import copy
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import unittest
from pathlib import Path

import yaml

try:
    import helm_python
except ImportError:  # reported by the tests that need it
    helm_python = None

HERE = Path(__file__).resolve().parent
CHART = HERE / "sre-service"
VALUES = HERE / "values"
DEPLOY = HERE.parent
KUBERNETES = DEPLOY / "kubernetes"
SERVICES = ("hello", "messages", "notes", "chat")
NAMESPACE = "sre-prod"
K8S_VERSIONS = ("1.30.0", "1.37.0")
# Kinds whose schemas kubernetes-validate does not ship (CRDs); check_manifests.py reads the
# fields of theirs that matter.
CRD_KINDS = (
    ("ServiceMonitor", "monitoring.coreos.com/v1"),
    ("PrometheusRule", "monitoring.coreos.com/v1"),
    ("Probe", "monitoring.coreos.com/v1"),
    ("Certificate", "cert-manager.io/v1"),
    ("Issuer", "cert-manager.io/v1"),
)
# Checks a render without image digests also skips (../checkov.yaml says why).
UNPINNED_CHECKOV_SKIPS = ("CKV_K8S_43", "CKV_K8S_15")


def tool(name, env=None):
    """The path of a command-line tool, or a skip (a failure under CI) when it is missing."""
    path = shutil.which(os.environ.get(env, name) if env else name)
    if path is None:
        message = f"{name} is not installed"
        if os.environ.get("CI"):
            raise AssertionError(message)
        raise unittest.SkipTest(message)
    return path


def merge(base, extra):
    """Helm's merge of values files: maps merge key by key, anything else is replaced."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def profile_values(service, profile):
    """The values an install passes: values/<service>.yaml, then the profile's files."""
    files = [f"{service}.yaml"]
    if profile == "prod":
        files += ["prod.yaml"] + (["notes-prod.yaml"] if service == "notes" else [])
    elif profile == "review":
        files += ["review.yaml"]
    values = {}
    for name in files:
        merge(values, yaml.safe_load((VALUES / name).read_text()))
    return values


PROFILES = ("default", "prod", "review")


class Chart:
    """The chart, loaded once."""

    _chart = None

    @classmethod
    def get(cls):
        if helm_python is None:
            tool("helm-python-sdk (python3 -m pip install helm-python-sdk)")
        if cls._chart is None:
            cls._chart = helm_python.Chart.load(str(CHART))
        return cls._chart

    @classmethod
    def render_text(cls, values, namespace=NAMESPACE):
        files = cls.get().render(values, name=values["service"], namespace=namespace, is_install=True)
        return "\n---\n".join(files[path] for path in sorted(files) if path.endswith(".yaml"))

    @classmethod
    def render(cls, values, namespace=NAMESPACE):
        return [d for d in yaml.safe_load_all(cls.render_text(values, namespace)) if d]


@functools.lru_cache(maxsize=None)
def profile_render(service, profile):
    """The rendering of `service` with `profile`'s values, made once for every test that reads it."""
    return Chart.render_text(profile_values(service, profile))


def kustomize(overlay):
    kubectl = os.environ.get("KUBECTL", "/usr/lib/google-cloud-sdk/bin/kubectl.1.33")
    if not shutil.which(kubectl):
        kubectl = tool("kubectl", "KUBECTL")
    out = subprocess.run([kubectl, "kustomize", str(KUBERNETES / "overlays" / overlay)],
                         check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def comparable(doc, service):
    """An object without what legitimately differs between the chart and Kustomize: metadata
    other than name and namespace (Helm adds its labels), the pod template's labels and
    annotations (the chart's config checksum), the ConfigMap's hash suffix and the order of
    environment variables."""
    doc = copy.deepcopy(doc)
    doc["metadata"] = {k: doc["metadata"][k] for k in ("name", "namespace") if k in doc["metadata"]}
    template = doc.get("spec", {}).get("template")
    if template:
        template["metadata"] = {}
        for volume in template["spec"].get("volumes", []):
            if "configMap" in volume:
                volume["configMap"]["name"] = f"{service}-config"
        for container in template["spec"]["containers"]:
            container["env"] = sorted(container.get("env", []), key=lambda e: e["name"])
    return doc


class ChartTest(unittest.TestCase):
    maxDiff = None

    def test_lints_clean_for_every_service_and_profile(self):
        Chart.get()
        for service in SERVICES:
            for profile in PROFILES:
                with self.subTest(service=service, profile=profile):
                    report = helm_python.lint(str(CHART), profile_values(service, profile), strict=True,
                                              namespace=NAMESPACE, kube_version="v1.30.0")
                    # Severity 1 is informational (Chart.yaml has no icon); 2+ is a finding.
                    findings = [m for m in report["messages"] if m["severity"] >= 2]
                    self.assertEqual((findings, report["errors"]), ([], []))

    def test_renders_are_schema_valid_for_the_minimum_and_newest_kubernetes(self):
        validate = tool("kubernetes-validate")
        for service in SERVICES:
            for profile in PROFILES:
                with self.subTest(service=service, profile=profile), tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "render.yaml"
                    path.write_text(profile_render(service, profile))
                    for version in K8S_VERSIONS:
                        run = subprocess.run([validate, "--strict", "--quiet", "-k", version, str(path)],
                                             capture_output=True, text=True)
                        report = (run.stdout + run.stderr).splitlines()
                        unexpected = [line for line in report if not any(
                            f"Couldn't find schema for kind {kind} with api version {api}" in line
                            for kind, api in CRD_KINDS)]
                        self.assertEqual((run.returncode, unexpected), (0, []), f"Kubernetes {version}")

    def test_renders_pass_the_structural_checks_of_the_kustomize_overlays(self):
        for service in SERVICES:
            for profile in PROFILES:
                with self.subTest(service=service, profile=profile), tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "render.yaml"
                    path.write_text(profile_render(service, profile))
                    args = [sys.executable, str(KUBERNETES / "check_manifests.py"), str(path),
                            f"{service}-{profile}", "--release"]
                    if profile == "prod":
                        args.append("--require-digest")
                    run = subprocess.run(args, capture_output=True, text=True)
                    self.assertEqual(run.returncode, 0, run.stdout + run.stderr)

    def test_checkov_finds_nothing_beyond_the_documented_skips(self):
        checkov = tool("checkov", "CHECKOV")
        with tempfile.TemporaryDirectory() as tmp:
            for pinned in (True, False):
                directory = Path(tmp) / ("pinned" if pinned else "unpinned")
                directory.mkdir()
                for service in SERVICES:
                    for profile in (("prod",) if pinned else ("default", "review")):
                        (directory / f"{service}-{profile}.yaml").write_text(profile_render(service, profile))
                config = yaml.safe_load((DEPLOY / "checkov.yaml").read_text())
                skips = config["skip-check"] + ([] if pinned else list(UNPINNED_CHECKOV_SKIPS))
                run = subprocess.run([checkov, "--config-file", str(DEPLOY / "checkov.yaml"), "--skip-download",
                                      "--skip-check", ",".join(skips), "-d", str(directory)],
                                     capture_output=True, text=True)
                with self.subTest(pinned=pinned):
                    self.assertEqual(run.returncode, 0, run.stdout[-4000:])
                    self.assertIn("Failed checks: 0", run.stdout)

    def test_the_prod_rendering_equals_the_kustomize_prod_overlay(self):
        overlay = kustomize("prod")
        for service in SERVICES:
            with self.subTest(service=service):
                chart = Chart.render(profile_values(service, "prod"))
                kinds = ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                         "NetworkPolicy", "ServiceMonitor", "Probe"]
                if service == "messages":
                    kinds.append("Certificate")
                for kind in kinds:
                    self.assertEqual(comparable(find(chart, kind, service), service),
                                     comparable(find(overlay, kind, service), service), f"{kind} {service}")
                self.assertEqual(find(chart, "PrometheusRule", f"{service}-slo")["spec"],
                                 find(overlay, "PrometheusRule", f"{service}-slo")["spec"])
                # config.toml: the same settings (the chart writes it from values with toToml).
                overlay_config = next(d for d in overlay if d["kind"] == "ConfigMap"
                                      and d["metadata"]["name"].startswith(f"{service}-config-"))
                self.assertEqual(
                    tomllib.loads(find(chart, "ConfigMap", f"{service}-config")["data"]["config.toml"]),
                    tomllib.loads(overlay_config["data"]["config.toml"]))
                # Public through an Ingress with TLS, to the same Service port, with the same
                # annotations where the overlay's Ingress serving the host has them.
                ingress = find(chart, "Ingress", service)
                (rule,) = ingress["spec"]["rules"]
                overlay_ingress = next(i for i in overlay if i["kind"] == "Ingress"
                                       and any(r["host"] == rule["host"] for r in i["spec"]["rules"]))
                overlay_rule = next(r for r in overlay_ingress["spec"]["rules"] if r["host"] == rule["host"])
                self.assertEqual(rule["http"], overlay_rule["http"])
                self.assertIn(rule["host"], ingress["spec"]["tls"][0]["hosts"])
                self.assertLessEqual(ingress["metadata"].get("annotations", {}).items(),
                                     overlay_ingress["metadata"].get("annotations", {}).items())
                # Nothing more and nothing less of the service's own objects.
                own = {(d["kind"], d["metadata"]["name"]) for d in chart}
                theirs = {(d["kind"], d["metadata"]["name"]) for d in overlay
                          if d["metadata"]["name"] in (service, f"{service}-slo")}
                self.assertEqual(own - {("ConfigMap", f"{service}-config")}, theirs | {("Ingress", service)})

    def test_the_grace_period_is_derived_from_the_shutdown_settings(self):
        values = merge(profile_values("hello", "default"),
                       {"shutdown": {"preStopSeconds": 7, "drainDelay": "10s", "grace": "40s", "spareSeconds": 3}})
        chart = Chart.render(values)
        pod = find(chart, "Deployment", "hello")["spec"]["template"]["spec"]
        self.assertEqual(pod["terminationGracePeriodSeconds"], 7 + 10 + 40 + 3)
        self.assertEqual(pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"], 7)
        config = tomllib.loads(find(chart, "ConfigMap", "hello-config")["data"]["config.toml"])
        self.assertEqual(config["shutdown"], {"drain_delay": "10s", "grace": "40s"})

    def test_a_config_change_rolls_the_pods(self):
        def checksum(values):
            deployment = find(Chart.render(values), "Deployment", "hello")
            return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

        values = profile_values("hello", "default")
        changed = merge(copy.deepcopy(values), {"config": {"telemetry": {"log_level": "debug"}}})
        self.assertNotEqual(checksum(values), checksum(changed))
        self.assertEqual(checksum(values), checksum(copy.deepcopy(values)))

    def test_a_review_release_brings_its_own_dependencies_and_secret(self):
        for service, dependencies in (("hello", {"postgres"}), ("messages", {"postgres", "redis"}),
                                      ("notes", {"postgres"}), ("chat", {"postgres", "nats"})):
            with self.subTest(service=service):
                review = Chart.render(profile_values(service, "review"), namespace="review-1")
                statefulsets = {d["metadata"]["name"] for d in review if d["kind"] == "StatefulSet"}
                self.assertEqual(statefulsets, {f"{service}-{d}" for d in dependencies})
                secret = find(review, "Secret", f"{service}-credentials")["stringData"]
                self.assertEqual(secret["storage-url"],
                                 f"postgres://{service}:review@{service}-postgres:5432/{service}")
                for dependency in dependencies:
                    find(review, "Service", f"{service}-{dependency}")
                    policy = find(review, "NetworkPolicy", f"{service}-{dependency}")
                    self.assertEqual(policy["spec"]["ingress"][0]["from"],
                                     [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": service}}}])
                prod = Chart.render(profile_values(service, "prod"))
                self.assertEqual([d for d in prod if d["kind"] in ("StatefulSet", "Secret")], [])

    def test_bad_values_are_refused_with_a_message_naming_the_field(self):
        cases = [
            ("an unknown key", {"replica": 3}, "additional properties 'replica' not allowed"),
            ("a service that does not exist", {"service": "helo"}, "at '/service'"),
            ("a grace not in whole seconds", {"shutdown": {"grace": "1m"}}, "at '/shutdown/grace'"),
            ("no CPU request", {"resources": {"requests": {"cpu": None}}}, "missing property 'cpu'"),
            ("a mutable image tag", {"image": {"tag": "latest"}}, "at '/image/tag'"),
            ("a malformed digest", {"image": {"digest": "sha256:abc"}}, "at '/image/digest'"),
            ("a credential in the ConfigMap", {"config": {"storage": {"url": "postgres://u:p@db/x"}}},
             "at '/config/storage/url'"),
            ("a PodDisruptionBudget that blocks drains", {"podDisruptionBudget": {"maxUnavailable": 0}},
             "at '/podDisruptionBudget/maxUnavailable'"),
            ("more minimum than maximum replicas", {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
             "autoscaling.minReplicas (5) must not exceed autoscaling.maxReplicas (2)"),
            ("an Ingress without trusted proxies", {"ingress": {"enabled": True}}, "needs trustedProxies"),
            ("a review Secret without a required key",
             {"credentials": {"create": True}, "review": {"enabled": False}},
             "needs key \"csrf-secret\""),
        ]
        for what, override, message in cases:
            with self.subTest(what):
                values = merge(profile_values("notes", "default"), override)
                with self.assertRaises(helm_python.HelmError) as refused:
                    Chart.render(values)
                self.assertIn(message, str(refused.exception))

    def test_the_chart_rules_are_the_generated_ones(self):
        # The Rust test `assert_generated_slo_files` keeps the Kustomize bases' rules current;
        # the chart must carry the same bytes.
        for service in SERVICES:
            with self.subTest(service=service):
                self.assertEqual((CHART / "files" / "rules" / f"{service}.yaml").read_text(),
                                 (KUBERNETES / "base" / service / "prometheusrule.yaml").read_text())


if __name__ == "__main__":
    unittest.main()
