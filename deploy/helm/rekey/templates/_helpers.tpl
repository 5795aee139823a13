{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "rekey.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rekey.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "rekey.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "rekey.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rekey.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rekey.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rekey.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "rekey.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "rekey.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rekey.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The port of a host:port listen address. */}}
{{- define "rekey.port" -}}
{{- $parts := splitList ":" . -}}
{{- last $parts -}}
{{- end -}}

{{/* The container port (name) serving the admin API and /metrics. */}}
{{- define "rekey.adminTargetPort" -}}
{{- if .Values.listen.separateAdminListener -}}admin{{- else -}}webhooks{{- end -}}
{{- end -}}

{{/*
The configuration file: values.config plus the store section the chart
owns. Listeners come from the environment (they win over the file).
*/}}
{{- define "rekey.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $daemon := default dict (get $cfg "daemon") -}}
{{- range $f := list "listen" "admin_listen" "address_file" -}}
{{- if hasKey $daemon $f -}}
{{- fail (printf "config.daemon.%s is set by the chart (values listen.*); remove it from config" $f) -}}
{{- end -}}
{{- end -}}
{{- if hasKey $cfg "store" -}}
{{- fail "config.store is set by the chart; use values store.*" -}}
{{- end -}}
{{- if eq .Values.store.type "sqlite" -}}
{{- $_ := set $cfg "store" (dict "type" "sqlite" "path" "/var/lib/rekey/rekey.db" "synchronous" .Values.store.sqlite.synchronous) -}}
{{- else if eq .Values.store.type "postgres" -}}
{{- if not .Values.store.postgres.dsnSecret.name -}}
{{- fail "store.postgres.dsnSecret.name is required with store.type postgres" -}}
{{- end -}}
{{- $_ := set $cfg "store" (dict "type" "postgres" "dsn_env" "REKEY_POSTGRES_DSN") -}}
{{- else -}}
{{- fail (printf "store.type must be sqlite or postgres, not %q" .Values.store.type) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
