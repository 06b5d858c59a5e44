{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "stack-scim-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "stack-scim-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "stack-scim-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stack-scim-operator.labels" -}}
helm.sh/chart: {{ include "stack-scim-operator.chart" . }}
{{ include "stack-scim-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stack-scim-operator
{{- end }}

{{- define "stack-scim-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stack-scim-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "stack-scim-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stack-scim-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The SCIM server's public base URL: scim.externalURL, else derived from the Ingress. */}}
{{- define "stack-scim-operator.externalURL" -}}
{{- if .Values.scim.externalURL }}
{{- .Values.scim.externalURL | trimSuffix "/" }}
{{- else if and .Values.ingress.enabled .Values.ingress.host }}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) .Values.ingress.host }}
{{- end }}
{{- end }}

{{- define "stack-scim-operator.tenantNamespace" -}}
{{- default .Release.Namespace .Values.tenant.namespace }}
{{- end }}

{{/*
The watched namespaces as a JSON list: watchNamespace may be one name, a comma-separated
list or a YAML list. Empty means every namespace.
*/}}
{{- define "stack-scim-operator.watchNamespaces" -}}
{{- $raw := .Values.watchNamespace -}}
{{- $list := list -}}
{{- if kindIs "slice" $raw -}}
{{- $list = $raw -}}
{{- else if $raw -}}
{{- $list = splitList "," $raw -}}
{{- end -}}
{{- $out := list -}}
{{- range $list -}}
{{- $ns := trim . -}}
{{- if and $ns (not (has $ns $out)) -}}
{{- $out = append $out $ns -}}
{{- end -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}
