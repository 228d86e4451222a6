{{/* The chart's name, or nameOverride. */}}
{{- define "mongodb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release's full name, used for every object: fullnameOverride, else the release name when it
already contains the chart's name, else "<release>-<chart>".
*/}}
{{- define "mongodb.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* chart label: name-version */}}
{{- define "mongodb.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the pods (never change them on upgrade). */}}
{{- define "mongodb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mongodb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "mongodb.labels" -}}
helm.sh/chart: {{ include "mongodb.chart" . }}
{{ include "mongodb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: invoiceflow
{{- end -}}

{{/* The Secret with the credentials: existingSecret, or the one this chart makes. */}}
{{- define "mongodb.secretName" -}}
{{- default (include "mongodb.fullname" .) .Values.auth.existingSecret -}}
{{- end -}}

{{/* The in-cluster DNS name of the ClusterIP Service. */}}
{{- define "mongodb.host" -}}
{{- printf "%s.%s.svc.%s" (include "mongodb.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/*
A password: the value given, else the one already in the release's Secret (so upgrades keep it),
else a new random one. Call it once per password and keep the result in a variable.
Arguments: (list $ "<secret key>" <value given>)
*/}}
{{- define "mongodb.password" -}}
{{- $top := index . 0 -}}
{{- $key := index . 1 -}}
{{- $given := index . 2 -}}
{{- $existing := lookup "v1" "Secret" $top.Release.Namespace (include "mongodb.fullname" $top) -}}
{{- if $given -}}
{{- $given -}}
{{- else if and $existing $existing.data (hasKey $existing.data $key) -}}
{{- index $existing.data $key | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}

{{/* The image reference, pinned by tag (and by digest when one is given). */}}
{{- define "mongodb.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository .Values.image.tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{/* Percent-encodes a URI component (a space as %20, never "+"). */}}
{{- define "mongodb.urlencode" -}}
{{- . | urlquery | replace "+" "%20" -}}
{{- end -}}
