#!/usr/bin/env python3
"""Structural checks of rendered manifests, beyond what a schema can say: rollout strategy,
probes, securityContext, resources, and that each Deployment has its Service, HPA,
PodDisruptionBudget, NetworkPolicy, ServiceMonitor, Probe and PrometheusRule.

Used for the Kustomize overlays (validate.sh, --overlay) and the Helm chart's releases
(deploy/helm/test_chart.py, --release), so both meet the same guarantees.

Usage: check_manifests.py RENDERED.yaml LABEL (--overlay | --release) [--require-digest]
                          [--k8s-versions "1.30.0, 1.37.0"]
  --overlay   a whole Kustomize overlay: it creates its namespace, carries the stack alerts,
              and in dev generates every Secret it references; prod pins images by digest.
  --release   one Helm release: its namespace exists already, the stack alerts are installed
              separately (README, "Helm chart").
"""
import argparse
import re
import sys

import yaml

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("path")
parser.add_argument("label")
kind = parser.add_mutually_exclusive_group(required=True)
kind.add_argument("--overlay", action="store_true")
kind.add_argument("--release", action="store_true")
parser.add_argument("--require-digest", action="store_true")
parser.add_argument("--k8s-versions", default="")
args = parser.parse_args()
path, overlay, k8s_version = args.path, args.label, args.k8s_versions
require_digest = args.require_digest or (args.overlay and overlay == "prod")
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []


def err(msg):
    errors.append(msg)


def by_kind(kind):
    return [d for d in docs if d.get("kind") == kind]


def name(d):
    return d["metadata"]["name"]


def matches(selector, labels):
    """A non-empty label selector of matchLabels only (as used here) that matches labels."""
    selector = selector or {}
    if selector.get("matchExpressions"):
        return False
    ml = selector.get("matchLabels") or {}
    return bool(ml) and all(labels.get(k) == v for k, v in ml.items())


def dig(obj, *keys):
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


services = by_kind("Service")
rule_names = {name(d) for d in by_kind("PrometheusRule")}
present = {(d["kind"], name(d)) for d in docs}
counts = {}
for d in docs:
    counts[d["kind"]] = counts.get(d["kind"], 0) + 1
external_secrets = set()
external_issuers = set()
secret_keys = {name(d): set(d.get("data") or {}) | set(d.get("stringData") or {}) for d in by_kind("Secret")}
# A cert-manager Certificate writes its Secret (tls.crt, tls.key) once its Issuer is in the render.
issuers = {name(d) for d in by_kind("Issuer")}
for issuer in by_kind("Issuer"):
    ca_secret = dig(issuer, "spec", "ca", "secretName")
    if ca_secret and ("Secret", ca_secret) not in present:
        external_secrets.add(ca_secret)
for cert in by_kind("Certificate"):
    cw = f"Certificate {name(cert)}"
    issuer = dig(cert, "spec", "issuerRef", "name")
    if dig(cert, "spec", "issuerRef", "kind") in (None, "Issuer") and issuer not in issuers:
        # An overlay brings its Issuer; a release may use one the namespace already has.
        if args.overlay:
            err(f"{cw}: Issuer {issuer!r} is not in the render")
        else:
            external_issuers.add(issuer)
    namespace = cert["metadata"].get("namespace")
    dns_names = dig(cert, "spec", "dnsNames") or [""]
    svc_name = dns_names[0]
    for dns in dns_names[1:]:
        if not dns.startswith(f"{svc_name}.{namespace}.svc"):
            err(f"{cw}: DNS name {dns!r} is not Service {svc_name} in namespace {namespace}")
    present.add(("Secret", dig(cert, "spec", "secretName")))
    secret_keys[dig(cert, "spec", "secretName")] = {"tls.crt", "tls.key"}

for dep in by_kind("Deployment"):
    n = name(dep)
    where = f"Deployment {n}"
    spec = dep["spec"]
    tmpl = spec["template"]
    pod_labels = tmpl["metadata"].get("labels", {})
    pod = tmpl["spec"]

    # Selector: stable (only the name label) and matching the pod template.
    if spec["selector"] != {"matchLabels": {"app.kubernetes.io/name": n}}:
        err(f"{where}: selector must be exactly matchLabels app.kubernetes.io/name={n}, got {spec['selector']}")
    if not matches(spec["selector"], pod_labels):
        err(f"{where}: selector does not match the pod template labels")
    for key, value in (("app.kubernetes.io/name", n), ("app.kubernetes.io/part-of", "sre-platform"),
                       ("app.kubernetes.io/component", "api")):
        if pod_labels.get(key) != value:
            err(f"{where}: pod label {key} must be {value!r}, got {pod_labels.get(key)!r}")

    # Rollout.
    strategy = spec.get("strategy", {})
    rolling = strategy.get("rollingUpdate", {})
    if strategy.get("type") != "RollingUpdate":
        err(f"{where}: strategy.type must be RollingUpdate")
    if str(rolling.get("maxUnavailable")) not in ("0", "0%"):
        err(f"{where}: rollingUpdate.maxUnavailable must be 0, got {rolling.get('maxUnavailable')!r}")
    if rolling.get("maxSurge") != "25%":
        err(f"{where}: rollingUpdate.maxSurge must be 25%, got {rolling.get('maxSurge')!r}")

    # Pod-level settings.
    if pod.get("automountServiceAccountToken") is not False:
        err(f"{where}: automountServiceAccountToken must be false")
    psc = pod.get("securityContext", {})
    for key, want in (("runAsNonRoot", True), ("runAsUser", 1000), ("runAsGroup", 1000), ("fsGroup", 1000)):
        if psc.get(key) != want or type(psc.get(key)) is not type(want):
            err(f"{where}: pod securityContext.{key} must be {str(want).lower()}, got {psc.get(key)!r}")
    if dig(psc, "seccompProfile", "type") != "RuntimeDefault":
        err(f"{where}: pod securityContext.seccompProfile.type must be RuntimeDefault")
    spread = {c.get("topologyKey"): c for c in pod.get("topologySpreadConstraints", [])}
    for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname"):
        c = spread.get(key)
        if not c:
            err(f"{where}: no topologySpreadConstraint over {key}")
        elif not matches(c.get("labelSelector"), pod_labels) or "pod-template-hash" not in c.get("matchLabelKeys", []):
            err(f"{where}: topologySpreadConstraint over {key} must select the pod and use matchLabelKeys [pod-template-hash]")
    if dig(spread.get("topology.kubernetes.io/zone"), "whenUnsatisfiable") != "ScheduleAnyway":
        err(f"{where}: the zone spread must be whenUnsatisfiable: ScheduleAnyway")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    config_volumes = {v for v, body in volumes.items() if "configMap" in body}
    for v in ("data", "tmp"):
        if "emptyDir" not in volumes.get(v, {}):
            err(f"{where}: volume {v!r} must be an emptyDir")

    grace = pod.get("terminationGracePeriodSeconds", 30)
    containers = pod.get("containers", [])
    if not containers:
        err(f"{where}: no containers")
    for c in pod.get("initContainers", []) + containers:
        cw = f"{where} container {c['name']}"
        res = c.get("resources", {})
        if not dig(res, "limits", "memory"):
            err(f"{cw}: resources.limits.memory is missing")
        if not dig(res, "requests", "cpu"):
            err(f"{cw}: resources.requests.cpu is missing")
        csc = c.get("securityContext", {})
        for key, want in (("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False),
                          ("runAsNonRoot", True)):
            if csc.get(key) is not want:
                err(f"{cw}: securityContext.{key} must be {str(want).lower()}")
        if dig(csc, "capabilities", "drop") != ["ALL"]:
            err(f"{cw}: securityContext.capabilities.drop must be [ALL]")
        image = c.get("image", "")
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            err(f"{cw}: image {image!r} has no pinned tag")
        for env in c.get("env", []):
            ref = dig(env, "valueFrom", "secretKeyRef")
            if ref and ("Secret", ref["name"]) not in present:
                external_secrets.add(ref["name"])
            elif ref and not ref.get("optional") and ref["key"] not in secret_keys[ref["name"]]:
                err(f"{cw}: env {env['name']} needs key {ref['key']!r} of Secret {ref['name']}, which lacks it")
            if re.search(r"://[^/@\s]*:[^/@\s]*@", str(env.get("value", ""))):
                err(f"{cw}: env {env['name']} has credentials in a literal value; use a secretKeyRef")
        for mount in c.get("volumeMounts", []):
            if mount["name"] in config_volumes and "subPath" in mount:
                err(f"{cw}: the config volume is mounted with subPath (updates would not reach the pod)")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        if c in containers:
            if mounts.get("/etc/service") not in config_volumes:
                err(f"{cw}: /etc/service must be a ConfigMap volume mount")
            if mounts.get("/data") != "data" or mounts.get("/tmp") != "tmp":
                err(f"{cw}: /data and /tmp must mount the data and tmp emptyDirs")

    main = containers[0] if containers else {}
    cw = f"{where} container {main.get('name')}"
    ports = {p.get("name"): p["containerPort"] for p in main.get("ports", [])}
    admin_port = ports.get("admin")
    if admin_port is None:
        err(f"{cw}: no container port named 'admin'")
    for probe, path in (("livenessProbe", "/livez"), ("startupProbe", "/livez"), ("readinessProbe", "/readyz")):
        get = dig(main, probe, "httpGet")
        if not get:
            err(f"{cw}: {probe} must be an httpGet probe")
            continue
        if get.get("port") not in ("admin", admin_port):
            err(f"{cw}: {probe} must use the admin port, got {get.get('port')!r}")
        if get.get("path") != path:
            err(f"{cw}: {probe} path must be {path}, got {get.get('path')!r}")
        if get.get("scheme", "HTTP") != "HTTP":
            err(f"{cw}: {probe} must be plain HTTP (the admin port has no TLS)")
    pre_stop = dig(main, "lifecycle", "preStop", "sleep", "seconds")
    if pre_stop is None:
        err(f"{cw}: lifecycle.preStop.sleep.seconds is missing")
    elif grace < pre_stop + 5 + 25 + 10:
        err(f"{where}: terminationGracePeriodSeconds {grace} < preStop {pre_stop} + drain 5 + grace 25 + 10")

    # The Service: selects the pods, carries the jobLabel, exposes the API and admin ports.
    svc = next((s for s in services if name(s) == n), None)
    if svc is None:
        err(f"{where}: no Service named {n}")
        svc_port_names = set()
    else:
        if not matches({"matchLabels": svc["spec"].get("selector", {})}, pod_labels):
            err(f"Service {n}: selector {svc['spec'].get('selector')} does not match the pod labels of Deployment {n}")
        if svc["spec"].get("type", "ClusterIP") != "ClusterIP":
            err(f"Service {n}: type must be ClusterIP")
        svc_port_names = {p.get("name") for p in svc["spec"].get("ports", [])}
        if "admin" not in svc_port_names or not (svc_port_names & {"http", "https"}):
            err(f"Service {n}: needs ports named admin and http (https for TLS), got {sorted(svc_port_names)}")
        for p in svc["spec"].get("ports", []):
            target = p.get("targetPort", p["port"])
            if target not in ports and target not in ports.values():
                err(f"Service {n}: port {p.get('name')} targets {target!r}, which the pod does not expose")
            if p.get("name") == "https" and p.get("appProtocol") != "https":
                err(f"Service {n}: port https must set appProtocol: https")

    # HPA on this Deployment, CPU-based.
    hpas = [h for h in by_kind("HorizontalPodAutoscaler")
            if dig(h, "spec", "scaleTargetRef", "kind") == "Deployment" and dig(h, "spec", "scaleTargetRef", "name") == n]
    if not hpas:
        err(f"{where}: no HorizontalPodAutoscaler targets it")
    for h in hpas:
        if h["spec"].get("minReplicas", 1) > h["spec"]["maxReplicas"]:
            err(f"HorizontalPodAutoscaler {name(h)}: minReplicas > maxReplicas")
        if not any(dig(m, "resource", "name") == "cpu" for m in h["spec"].get("metrics", [])):
            err(f"HorizontalPodAutoscaler {name(h)}: no CPU metric")

    # PodDisruptionBudget selecting the pods.
    if not any(matches(p["spec"].get("selector"), pod_labels) for p in by_kind("PodDisruptionBudget")):
        err(f"{where}: no PodDisruptionBudget selects its pods")

    # NetworkPolicy: the admin port only from Prometheus in the monitoring namespace.
    policies = [p for p in by_kind("NetworkPolicy") if matches(p["spec"].get("podSelector"), pod_labels)]
    if not policies:
        err(f"{where}: no NetworkPolicy selects its pods")
    admin_rule_seen = False
    for policy in policies:
        pw = f"NetworkPolicy {name(policy)}"
        if "Ingress" not in policy["spec"].get("policyTypes", []):
            err(f"{pw}: policyTypes must include Ingress")
        for rule in policy["spec"].get("ingress", []):
            rule_ports = rule.get("ports")
            opens_admin = rule_ports is None or any(
                p.get("port") in ("admin", admin_port) or p.get("port") is None for p in rule_ports)
            if not opens_admin:
                continue
            admin_rule_seen = True
            peers = rule.get("from")
            if not peers:
                err(f"{pw}: an ingress rule opens the admin port to everyone")
                continue
            for peer in peers:
                if dig(peer, "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") != "monitoring":
                    err(f"{pw}: the admin-port rule must name the monitoring namespace (kubernetes.io/metadata.name)")
                if not dig(peer, "podSelector", "matchLabels"):
                    err(f"{pw}: the admin-port rule must also select the Prometheus pods (podSelector)")
    if policies and not admin_rule_seen:
        err(f"{where}: no NetworkPolicy rule admits Prometheus to the admin port")

    # ServiceMonitor: selects the Service, scrapes port names it has, job label = service name.
    monitors = [m for m in by_kind("ServiceMonitor")
                if svc is not None and matches(m["spec"].get("selector"), svc["metadata"].get("labels", {}))]
    if not monitors:
        err(f"{where}: no ServiceMonitor selects Service {n}")
    for m in monitors:
        mw = f"ServiceMonitor {name(m)}"
        job_label = m["spec"].get("jobLabel")
        if not job_label or svc["metadata"].get("labels", {}).get(job_label) != n:
            err(f"{mw}: jobLabel must name a Service label whose value is {n!r} (the SLO rules select job={n!r})")
        for ep in m["spec"].get("endpoints", []):
            if ep.get("port") not in svc_port_names:
                err(f"{mw}: endpoint port {ep.get('port')!r} is not a port name of Service {n}")
        if not any(ep.get("port") == "admin" and ep.get("path", "/metrics") == "/metrics" for ep in m["spec"].get("endpoints", [])):
            err(f"{mw}: must scrape port admin at /metrics")

    if f"{n}-slo" not in rule_names:
        err(f"{where}: no PrometheusRule {n}-slo")

    # Probe: the blackbox exporter probes the public port through the Service's full name, and
    # the targets carry service=<name>, which the generated probe SLI selects.
    public = [p for p in (svc["spec"].get("ports", []) if svc is not None else []) if p.get("name") in ("http", "https")]
    probes = [p for p in by_kind("Probe") if dig(p, "spec", "targets", "staticConfig", "labels", "service") == n]
    if not probes:
        err(f"{where}: no Probe has targets labelled service={n!r} (the probe SLI selects probe_success{{service={n!r}}})")
    for p in probes:
        pw = f"Probe {name(p)}"
        if not dig(p, "spec", "prober", "url") or not p["spec"].get("module"):
            err(f"{pw}: needs spec.prober.url and spec.module")
        namespace = p["metadata"].get("namespace")
        wanted = {f"{q.get('name')}://{n}.{namespace}.svc:{q['port']}/" for q in public}
        for target in dig(p, "spec", "targets", "staticConfig", "static") or []:
            if not any(target.startswith(w) for w in wanted):
                err(f"{pw}: target {target!r} is not the public port of Service {n} in {namespace} ({sorted(wanted)})")
        if not dig(p, "spec", "targets", "staticConfig", "static"):
            err(f"{pw}: no static targets")

# Referenced ConfigMaps must be rendered; Secrets may be managed out of band only in prod.
for dep in by_kind("Deployment"):
    for v in dep["spec"]["template"]["spec"].get("volumes", []):
        secret = dig(v, "secret", "secretName")
        if secret and ("Secret", secret) not in present:
            external_secrets.add(secret)
        cm = dig(v, "configMap", "name")
        if cm and ("ConfigMap", cm) not in present:
            err(f"Deployment {name(dep)}: ConfigMap {cm} is not in the render")
for cm in by_kind("ConfigMap"):
    for key, text in (cm.get("data") or {}).items():
        if re.search(r"://[^/@\s\"']*:[^/@\s\"']*@", text):
            err(f"ConfigMap {name(cm)}: {key} contains a URL with credentials; move it to a Secret")
if args.overlay and overlay == "dev" and external_secrets:
    err(f"dev: Secrets referenced but not generated: {', '.join(sorted(external_secrets))}")
# Ingress: each backend is a Service port of the render, each host is covered by TLS, and the
# services behind it believe the controller's X-Forwarded-For (server.trusted_proxies).
for ing in by_kind("Ingress"):
    iw = f"Ingress {name(ing)}"
    tls_hosts = {h for t in ing["spec"].get("tls", []) for h in t.get("hosts", [])}
    for t in ing["spec"].get("tls", []):
        if t.get("secretName") and ("Secret", t["secretName"]) not in present:
            external_secrets.add(t["secretName"])
    for rule in ing["spec"].get("rules", []):
        if rule.get("host") not in tls_hosts:
            err(f"{iw}: host {rule.get('host')!r} has no TLS")
        for path in dig(rule, "http", "paths") or []:
            backend = dig(path, "backend", "service") or {}
            svc = next((x for x in services if name(x) == backend.get("name")), None)
            port = dig(backend, "port", "name")
            if svc is None or port not in {p.get("name") for p in svc["spec"].get("ports", [])}:
                err(f"{iw}: backend {backend.get('name')}:{port} is not a Service port of the render")
                continue
            if port == "admin":
                err(f"{iw}: the admin port must never be routed publicly")
            dep = next((d for d in by_kind("Deployment") if name(d) == name(svc)), None)
            env = {e["name"] for c in dig(dep, "spec", "template", "spec", "containers") or [] for e in c.get("env", [])}
            if f"{name(svc).upper()}__SERVER__TRUSTED_PROXIES" not in env:
                err(f"{iw}: Deployment {name(svc)} is behind it but sets no {name(svc).upper()}__SERVER__TRUSTED_PROXIES")

# prod runs exactly the images a release chose: pinned by digest, not only by tag.
if require_digest:
    for dep in by_kind("Deployment"):
        for c in dep["spec"]["template"]["spec"]["containers"]:
            if not re.search(r"@sha256:[0-9a-f]{64}$", c.get("image", "")):
                err(f"Deployment {name(dep)} container {c['name']}: prod image {c.get('image')!r} is not pinned by digest")

namespaces = {d.get("metadata", {}).get("namespace") for d in docs if d["kind"] != "Namespace"}
if args.overlay:
    # The alerts about the monitoring itself (Watchdog, TargetDown, ProbeFailing).
    if "stack" not in rule_names:
        err(f"{overlay}: no PrometheusRule stack (components/monitoring)")
    if len(namespaces) != 1 or not ({("Namespace", ns) for ns in namespaces} <= present):
        err(f"{overlay}: every resource must be in one namespace that the overlay creates, got {namespaces}")
elif len(namespaces) != 1 or None in namespaces:
    err(f"{overlay}: every resource must name the release's namespace, got {namespaces}")

if errors:
    for e in errors:
        print(f"FAIL {overlay}: {e}", file=sys.stderr)
    sys.exit(1)

deployments = sorted(name(d) for d in by_kind("Deployment"))
extra = f"; Secrets expected out of band: {', '.join(sorted(external_secrets))}" if external_secrets else ""
if external_issuers:
    extra += f"; Issuers expected in the namespace: {', '.join(sorted(external_issuers))}"
schema = f", schema-valid for Kubernetes {k8s_version} (strict)" if k8s_version else ""
print(f"OK {overlay}: namespace {namespaces.pop()}, {len(docs)} resources, "
      f"Deployments {', '.join(deployments)}{schema}{extra}")
