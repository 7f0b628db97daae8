{{/* The chart's name. */}}
{{- define "cloudsentinel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, at most 56 characters so that "-ingest" still fits 63. */}}
{{- define "cloudsentinel.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 56 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cloudsentinel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "cloudsentinel.labels" -}}
helm.sh/chart: {{ include "cloudsentinel.chart" . }}
{{ include "cloudsentinel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cloudsentinel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cloudsentinel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The Secret with the PostgreSQL, RabbitMQ and admin passwords. */}}
{{- define "cloudsentinel.secretName" -}}
{{- default (include "cloudsentinel.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* The Secret with jwt.key and audit.key. */}}
{{- define "cloudsentinel.keysSecretName" -}}
{{- default (printf "%s-keys" (include "cloudsentinel.fullname" .)) .Values.keys.existingSecret }}
{{- end }}

{{- define "cloudsentinel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cloudsentinel.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cloudsentinel.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
