{{/*
Helpers shared by the templates. Every resource is named after the service (.Values.service),
as in the Kustomize bases, so the chart and the bases render the same objects.
*/}}

{{/* The service's name, checked once here: every template calls it first. */}}
{{- define "sre.name" -}}
{{- required "values: `service` must name the service (hello, messages, notes or chat); pass -f deploy/helm/values/<service>.yaml" .Values.service -}}
{{- end -}}

{{/* The prefix of the service's environment variables: HELLO for hello. */}}
{{- define "sre.envPrefix" -}}
{{- include "sre.name" . | upper | replace "-" "_" -}}
{{- end -}}

{{/* Labels on every resource and pod. */}}
{{- define "sre.labels" -}}
app.kubernetes.io/name: {{ include "sre.name" . }}
app.kubernetes.io/part-of: sre-platform
app.kubernetes.io/component: api
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The selector: the name label only, so it never changes on an upgrade. */}}
{{- define "sre.selector" -}}
app.kubernetes.io/name: {{ include "sre.name" . }}
{{- end -}}

{{/* repository:tag, or repository:tag@digest when a digest is set. */}}
{{- define "sre.image" -}}
{{- $repository := .Values.image.repository | default (printf "sre-platform/%s" (include "sre.name" .)) -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" $repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "sre.credentialsSecret" -}}
{{- .Values.credentials.secretName | default (printf "%s-credentials" (include "sre.name" .)) -}}
{{- end -}}

{{- define "sre.tlsSecret" -}}
{{- .Values.tls.secretName | default (printf "%s-tls" (include "sre.name" .)) -}}
{{- end -}}

{{/* "5s" -> 5. The schema only admits whole seconds, so this cannot misread a value. */}}
{{- define "sre.seconds" -}}
{{- trimSuffix "s" . | atoi -}}
{{- end -}}

{{/*
The termination grace period: the preStop sleep, then the drain delay, the grace for
in-flight work, and spare time before SIGKILL.
*/}}
{{- define "sre.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown -}}
{{- add $s.preStopSeconds (include "sre.seconds" $s.drainDelay) (include "sre.seconds" $s.grace) $s.spareSeconds -}}
{{- end -}}

{{/* The API port's name: https when the service terminates TLS, http otherwise. */}}
{{- define "sre.apiPortName" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end -}}
{{- end -}}

{{/*
config.toml: the values' `config` with what the chart owns written over it: the listen
addresses (from `ports`), [shutdown] (from `shutdown`, which also sets the grace period) and
[tls] (from `tls`).
*/}}
{{- define "sre.configToml" -}}
{{- $owned := dict
  "server" (dict "listen" (printf "0.0.0.0:%v" .Values.ports.api))
  "admin" (dict "listen" (printf "0.0.0.0:%v" .Values.ports.admin))
  "shutdown" (dict "drain_delay" .Values.shutdown.drainDelay "grace" .Values.shutdown.grace)
-}}
{{- if .Values.tls.enabled -}}
{{- $_ := set $owned "tls" (dict "enabled" true "cert" "/etc/tls/tls.crt" "key" "/etc/tls/tls.key") -}}
{{- else -}}
{{- $_ := set $owned "tls" (dict "enabled" false "self_signed_dir" "/data/tls") -}}
{{- end -}}
{{- $config := mustMergeOverwrite (deepCopy .Values.config) $owned -}}
{{- toToml $config -}}
{{- end -}}
