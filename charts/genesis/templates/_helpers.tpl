{{/* Names, labels and the pod template shared by every track. */}}

{{- define "genesis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "genesis.fullname" -}}
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

{{- define "genesis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable for the life of a release (a Deployment's selector is immutable). */}}
{{- define "genesis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "genesis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "genesis.labels" -}}
helm.sh/chart: {{ include "genesis.chart" . }}
{{ include "genesis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: genesis
{{- end }}

{{- define "genesis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "genesis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference of a track: its own tag/digest, else the chart-wide ones. */}}
{{- define "genesis.image" -}}
{{- $root := index . 0 }}
{{- $override := index . 1 }}
{{- $digest := default $root.Values.image.digest $override.digest }}
{{- $tag := default (default $root.Chart.AppVersion $root.Values.image.tag) $override.tag }}
{{- if $digest }}
{{- printf "%s@%s" $root.Values.image.repository $digest }}
{{- else }}
{{- printf "%s:%s" $root.Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "genesis.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown }}
{{- $needed := add $s.preStopSeconds $s.drainSeconds $s.graceSeconds }}
{{- if kindIs "invalid" $s.terminationGracePeriodSeconds }}
{{- add $needed 10 }}
{{- else if le (int $s.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "shutdown.terminationGracePeriodSeconds (%v) must exceed shutdown.preStopSeconds + drainSeconds + graceSeconds (%v), or the kubelet kills requests the app is still finishing" $s.terminationGracePeriodSeconds $needed) }}
{{- else }}
{{- $s.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
A Deployment of the chat service for one track.
Arguments: dict "root" $ "name" <name> "track" <track> "component" server|worker
           "replicas" <int or nil> "image" <override dict>
*/}}
{{- define "genesis.deployment" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $worker := eq .component "worker" }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  labels:
    {{- include "genesis.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    track: {{ .track }}
spec:
  {{- if not (kindIs "invalid" .replicas) }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "genesis.selectorLabels" $root | nindent 6 }}
      app.kubernetes.io/component: {{ .component }}
      track: {{ .track }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: {{ $v.rolling.maxSurge }}
      maxUnavailable: {{ $v.rolling.maxUnavailable }}
  template:
    metadata:
      labels:
        {{- include "genesis.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
        track: {{ .track }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # A changed ConfigMap or Secret rolls the pods: settings are read once, at start-up.
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        checksum/api-keys: {{ include (print $root.Template.BasePath "/api-keys.yaml") $root | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "genesis.serviceAccountName" $root }}
      # The service never calls the Kubernetes API: no token in the pod.
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ include "genesis.terminationGracePeriodSeconds" $root }}
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ include "genesis.image" (list $root .image) | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          {{- if $worker }}
          args:
            {{- toYaml $v.worker.args | nindent 12 }}
          {{- end }}
          securityContext:
            {{- toYaml $v.securityContext | nindent 12 }}
          ports:
            {{- if not $worker }}
            - name: http
              containerPort: 8000
              protocol: TCP
            {{- end }}
            # The worker serves /metrics too: the metrics Service selects both components.
            - name: metrics
              containerPort: 9464
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "genesis.fullname" $root }}
            {{- if or $v.existingSecret $v.secretEnv }}
            - secretRef:
                name: {{ default (include "genesis.fullname" $root) $v.existingSecret }}
            {{- end }}
          env:
            - name: GENESIS_TRACK
              value: {{ .track | quote }}
            - name: GENESIS_PORT
              value: "8000"
            - name: GENESIS_METRICS_PORT
              value: "9464"
            - name: GENESIS_DRAIN_SECONDS
              value: {{ $v.shutdown.drainSeconds | quote }}
            - name: GENESIS_GRACE_SECONDS
              value: {{ $v.shutdown.graceSeconds | quote }}
            {{- if or $v.apiKeys.lines $v.apiKeys.existingSecret }}
            - name: GENESIS_API_KEYS_FILE
              value: /etc/genesis/api-keys/api-keys
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- if $worker }}
          {{- with $v.worker.probes }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
          resources:
            {{- toYaml $v.worker.resources | nindent 12 }}
          {{- else }}
          startupProbe:
            {{- toYaml $v.probes.startup | nindent 12 }}
          readinessProbe:
            {{- toYaml $v.probes.readiness | nindent 12 }}
          livenessProbe:
            {{- toYaml $v.probes.liveness | nindent 12 }}
          lifecycle:
            preStop:
              exec:
                # Keep serving while endpoint removal reaches every kube-proxy and ingress.
                command: ["sleep", {{ $v.shutdown.preStopSeconds | quote }}]
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          {{- end }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if or $v.apiKeys.lines $v.apiKeys.existingSecret }}
            - name: api-keys
              mountPath: /etc/genesis/api-keys
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $v.tmpSizeLimit }}
        {{- if or $v.apiKeys.lines $v.apiKeys.existingSecret }}
        - name: api-keys
          secret:
            secretName: {{ default (printf "%s-api-keys" (include "genesis.fullname" $root)) $v.apiKeys.existingSecret }}
            defaultMode: 0440
        {{- end }}
      {{- if kindIs "invalid" $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "genesis.selectorLabels" $root | nindent 14 }}
              app.kubernetes.io/component: {{ .component }}
              track: {{ .track }}
      {{- else if $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml $v.topologySpreadConstraints | nindent 8 }}
      {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/*
A Service of the chat service. Arguments: dict "root" $ "name" <name> "selector" <dict>
"nodePort" <int or nil> "role" <main|preview|canary>
*/}}
{{- define "genesis.service" -}}
{{- $v := .root.Values }}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  labels:
    {{- include "genesis.labels" .root | nindent 4 }}
    app.kubernetes.io/component: server
    genesis.dev/service-role: {{ .role }}
  {{- with $v.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $v.service.type }}
  selector:
    {{- include "genesis.selectorLabels" .root | nindent 4 }}
    app.kubernetes.io/component: server
    {{- range $key, $value := .selector }}
    {{ $key }}: {{ $value }}
    {{- end }}
  ports:
    - name: http
      port: {{ $v.service.port }}
      targetPort: http
      protocol: TCP
      {{- if and (eq $v.service.type "NodePort") (not (kindIs "invalid" .nodePort)) }}
      nodePort: {{ .nodePort }}
      {{- end }}
{{- end }}

{{/* The tracks the chat service runs under the chosen strategy. */}}
{{- define "genesis.tracks" -}}
{{- if eq .Values.strategy "bluegreen" }}blue,green{{- else if eq .Values.strategy "canary" }}stable,canary{{- else }}stable{{- end }}
{{- end }}
