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

{{/*
The manager instances as a JSON list of {name, shard, namespaces, leaderID}. Without
`shards` there is one, named after the release and watching watchNamespace (its rendering
is the unsharded chart's). With `shards`, one per shard: its own Deployment, Service,
PodDisruptionBudget and leader election Lease, watching only the shard's namespaces.
*/}}
{{- define "stack-scim-operator.instances" -}}
{{- $full := include "stack-scim-operator.fullname" . -}}
{{- $out := list -}}
{{- if .Values.shards -}}
{{- if include "stack-scim-operator.watchNamespaces" . | fromJsonArray -}}
{{- fail "set either watchNamespace or shards: each shard lists its own namespaces" -}}
{{- end -}}
{{- $seen := dict -}}
{{- $names := dict -}}
{{- range .Values.shards -}}
{{- if hasKey $names .name -}}
{{- fail (printf "shard %q is listed twice" .name) -}}
{{- end -}}
{{- $_ := set $names .name true -}}
{{- range .namespaces -}}
{{- if hasKey $seen . -}}
{{- fail (printf "namespace %q is in two shards; a namespace belongs to one shard" .) -}}
{{- end -}}
{{- $_ := set $seen . true -}}
{{- end -}}
{{- $out = append $out (dict "name" (printf "%s-%s" ($full | trunc 50 | trimSuffix "-") .name) "shard" .name "namespaces" .namespaces "leaderID" (printf "%s.%s" .name "stack-scim-operator.scim.stackscim.io")) -}}
{{- end -}}
{{- else -}}
{{- $out = append $out (dict "name" $full "shard" "" "namespaces" (include "stack-scim-operator.watchNamespaces" . | fromJsonArray) "leaderID" "") -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}

{{/* Every namespace a manager instance watches (empty: cluster-wide), as a JSON list. */}}
{{- define "stack-scim-operator.allNamespaces" -}}
{{- $out := list -}}
{{- range include "stack-scim-operator.instances" . | fromJsonArray -}}
{{- $out = concat $out .namespaces -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}
