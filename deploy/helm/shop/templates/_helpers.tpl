{{/*
The repository's topology: each service's port, public prefix, listen variable and the
other services it calls (as variables). Service names are the repository's own.
*/}}
{{- define "shop.topology" -}}
backend: {port: 8000, prefix: api, listen: BACKEND_LISTEN, calls: {}}
cart-service: {port: 8001, prefix: cart-api, listen: CART_LISTEN, calls: {BACKEND_URL: "http://backend:8000", ORDER_SERVICE_URL: "http://order-service:8002"}}
order-service: {port: 8002, prefix: order-api, listen: ORDER_LISTEN, calls: {BACKEND_URL: "http://backend:8000"}}
user-service: {port: 8003, prefix: user-api, listen: USER_LISTEN, calls: {CART_SERVICE_URL: "http://cart-service:8001", ORDER_SERVICE_URL: "http://order-service:8002"}}
{{- end -}}

{{/* Labels of every object; "component" is also what Prometheus' scrape jobs select. */}}
{{- define "shop.labels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: shop
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "shop.selector" -}}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* An image of the shop: <registry>/<repository>/<target>:<tag>. */}}
{{- define "shop.image" -}}
{{- $i := .root.Values.image -}}
{{- $repo := printf "%s/%s" $i.repository .target -}}
{{- if $i.registry }}{{ $repo = printf "%s/%s" $i.registry $repo }}{{ end -}}
{{ $repo }}:{{ $i.tag | default .root.Chart.AppVersion }}
{{- end -}}

{{/* The Secret holding the service secrets: the user's or the chart's. */}}
{{- define "shop.secretName" -}}
{{ .Values.secrets.existingSecret | default "shop-secrets" }}
{{- end -}}

{{/* Pod anti-affinity of a component: "", "preferred" or "required". */}}
{{- define "shop.antiAffinity" -}}
{{- $selector := include "shop.selector" . | fromYaml -}}
{{- if eq .mode "required" }}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels: {{- toYaml $selector | nindent 10 }}
{{- else if eq .mode "preferred" }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels: {{- toYaml $selector | nindent 12 }}
{{- else if ne .mode "" }}
{{- fail (printf "%s must be \"\", \"preferred\" or \"required\", not %q" .value .mode) }}
{{- end }}
{{- end -}}

{{/* Hardened security context of a container. */}}
{{- define "shop.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Pod security context for an image user. */}}
{{- define "shop.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Where the services send traces. */}}
{{- define "shop.otlpEndpoint" -}}
{{- if .Values.jaeger.enabled -}}
http://jaeger:4318
{{- else -}}
{{ required "jaeger.external.otlpEndpoint is required when jaeger.enabled is false" .Values.jaeger.external.otlpEndpoint }}
{{- end -}}
{{- end -}}

{{/* Prometheus' URL, for Grafana and the reproduce Job. */}}
{{- define "shop.prometheusUrl" -}}
{{- if .Values.prometheus.enabled -}}
http://prometheus:9090
{{- else -}}
{{ required "prometheus.external.url is required when prometheus.enabled is false" .Values.prometheus.external.url }}
{{- end -}}
{{- end -}}

{{/*
Environment of a container from a map VARIABLE: value (sorted, values as strings).
*/}}
{{- define "shop.env" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ toString $value | quote }}
{{- end }}
{{- end -}}

{{/* Checksum of chart files, to restart pods when the configuration they mount changes. */}}
{{- define "shop.checksum" -}}
{{- $root := .root -}}
{{- $all := "" -}}
{{- range .files }}{{ $all = print $all ($root.Files.Get .) }}{{ end -}}
{{ sha256sum $all | trunc 16 }}
{{- end -}}
