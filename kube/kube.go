// Package kube renders the Kubernetes objects that run one spate scenario
// as a distributed run: a ConfigMap holding the scenario (and the files it
// names), a headless Service that gives shard 0 a stable DNS name, and an
// Indexed Job whose pod i runs shard i. No operator of spate's own: an
// Indexed Job gives every pod its index (JOB_COMPLETION_INDEX) and, with
// the Service as its subdomain, pod 0 the name <job>-0.<service>, which is
// all the shards need to find the coordinator.
//
// The objects are the official Kubernetes API types (k8s.io/api), so a
// field name cannot drift from what the API server accepts. Render does
// not read files, flags or the environment: the caller hands it the
// scenario's bytes and every file the pods need.
package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Paths inside every pod.
const (
	// WorkDir is the container's working directory; the scenario lies in
	// it, and a relative path the scenario names is relative to it.
	WorkDir = "/spate"
	// ResultsDir is where the report directories go: an emptyDir, or the
	// volume of Options.ResultsPVC.
	ResultsDir = "/results"
	// Binary is where the image keeps spate (the Dockerfile's ENTRYPOINT).
	Binary = "/usr/local/bin/spate"
)

// Defaults of Options.
const (
	DefaultPort        = 7070
	DefaultTTL         = 24 * time.Hour
	DefaultLinger      = 10 * time.Minute
	DefaultJoinTimeout = 5 * time.Minute
	// DeadlineMargin is added to the run's own time bound to make the
	// Job's activeDeadlineSeconds: scheduling, image pulls, the final
	// accounts' hand-over, writing the report.
	DeadlineMargin = 10 * time.Minute
)

// ContainerName is the name of the one container of each pod.
const ContainerName = "spate"

// User is the numeric user (and group) the pods run as: the image's
// non-root user.
const User = 65532

// maxConfigMapBytes is what a ConfigMap may hold (etcd's 1 MiB object
// limit, less room for the rest of the object).
const maxConfigMapBytes = 1000 * 1024

// File is a file the pods need: the scenario, or a file it names.
type File struct {
	// Path is where the file lies in the pod: absolute, or relative to
	// WorkDir.
	Path string
	Data []byte
}

// SecretEnv is an environment variable whose value comes from a key of a
// Secret: credentials never appear in the rendered objects.
type SecretEnv struct {
	Name, Secret, Key string
}

// SecretVolume mounts a Secret, read-only, as a directory: its keys are
// the files. For files that must not be inlined (a TLS private key).
type SecretVolume struct {
	Secret, Dir string
}

// Options describe one distributed run on Kubernetes.
type Options struct {
	// Name names the Job, the Service and the ConfigMap, and labels every
	// object (app.kubernetes.io/instance): a DNS-1035 label short enough
	// that pod hostnames <Name>-<index> stay within 63 characters.
	Name string
	// Namespace of every object; "": the one kubectl applies to.
	Namespace string
	// Image is the spate container image.
	Image string
	// Shards is how many pods run the scenario (≥ 1).
	Shards int
	// Scenario is the scenario file; its Path's base name is the file's
	// name in the pod (it names the run, like on any host).
	Scenario File
	// Files are the files the scenario names (TLS roots, certificates),
	// put in the ConfigMap and mounted at their paths.
	Files []File
	// Port is the coordinator's port (default DefaultPort).
	Port int
	// Duration bounds the run itself: traffic, drain and join timeout.
	// The Job's activeDeadlineSeconds is Duration + Linger +
	// DeadlineMargin; 0 leaves the Job without a deadline.
	Duration time.Duration
	// JoinTimeout is spate run's --join-timeout: how long the shards
	// wait for each other to start, image pulls included (default
	// DefaultJoinTimeout).
	JoinTimeout time.Duration
	// Requests and Limits are the container's resources, e.g. cpu: 2,
	// memory: 1Gi.
	Requests, Limits corev1.ResourceList
	// Spread places at most one shard per node (pod anti-affinity on the
	// host name).
	Spread bool
	// NodeSelector restricts the nodes the pods may run on.
	NodeSelector map[string]string
	// ServiceAccount runs the pods under this service account.
	ServiceAccount string
	// Env are plain environment variables, in order.
	Env []corev1.EnvVar
	// SecretEnv are environment variables from Secrets, in order.
	SecretEnv []SecretEnv
	// EnvFromSecrets are Secrets whose every key becomes a variable.
	EnvFromSecrets []string
	// SecretVolumes are Secrets mounted as directories.
	SecretVolumes []SecretVolume
	// ResultsPVC, when set, is the PersistentVolumeClaim the report
	// directory goes to (mounted by every pod at ResultsDir, so it must
	// be ReadWriteMany when the pods are on several nodes); otherwise an
	// emptyDir, and shard 0 serves the report for Linger.
	ResultsPVC string
	// Linger is spate run's --linger: how long shard 0 serves the report
	// files after the run.
	Linger time.Duration
	// TTL is the Job's ttlSecondsAfterFinished (default DefaultTTL).
	TTL time.Duration
}

// Manifests are the rendered objects of one run.
type Manifests struct {
	ConfigMap *corev1.ConfigMap
	Service   *corev1.Service
	Job       *batchv1.Job
}

// Labels that every object carries. Selector is what `kubectl delete -l`
// and `kubectl get -l` name.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelManagedBy = "app.kubernetes.io/managed-by"
)

// Selector is the label selector of the run name's objects and pods.
func Selector(name string) string {
	return LabelName + "=spate," + LabelInstance + "=" + name
}

// Coordinator is the coordinator's address as the pods reach it: pod 0's
// name in the Service's subdomain.
func Coordinator(name string, port int) string {
	return fmt.Sprintf("%s-0.%s:%d", name, name, port)
}

// imageRef is a container image reference: [host[:port]/]path[:tag][@digest]
// (the distribution reference grammar).
var imageRef = regexp.MustCompile(`^` +
	`(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?/)?` + // host
	`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*` + // path
	`(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?` + // tag
	`(?:@sha256:[a-f0-9]{64})?$`) // digest

// Validate checks o and lists every problem at once.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Shards < 1 {
		bad("shards: %d: a run needs at least 1 shard", o.Shards)
	}
	if msgs := validation.IsDNS1035Label(o.Name); len(msgs) > 0 {
		bad("name %q: %s", o.Name, strings.Join(msgs, "; "))
	} else if o.Shards >= 1 {
		if host := fmt.Sprintf("%s-%d", o.Name, o.Shards-1); len(host) > validation.DNS1035LabelMaxLength {
			bad("name %q: pod host names such as %s must be at most %d characters: use a shorter name", o.Name, host, validation.DNS1035LabelMaxLength)
		}
	}
	if o.Namespace != "" {
		if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
			bad("namespace %q: %s", o.Namespace, strings.Join(msgs, "; "))
		}
	}
	switch {
	case o.Image == "":
		bad("image: required, e.g. registry.example.com/spate:v1")
	case strings.ContainsFunc(o.Image, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		bad("image %q: an image name has no spaces or control characters", o.Image)
	case !imageRef.MatchString(o.Image):
		bad("image %q: not an image reference ([registry/]repository[:tag][@sha256:digest], repository in lower case)", o.Image)
	}
	if o.Port != 0 {
		if msgs := validation.IsValidPortNum(o.Port); len(msgs) > 0 {
			bad("port %d: %s", o.Port, strings.Join(msgs, "; "))
		}
	}
	if o.Scenario.Path == "" || len(o.Scenario.Data) == 0 {
		bad("scenario: no scenario file")
	}
	for k, v := range o.NodeSelector {
		if msgs := content.IsLabelKey(k); len(msgs) > 0 {
			bad("node selector %s=%s: key: %s", k, v, strings.Join(msgs, "; "))
		}
		if msgs := content.IsLabelValue(v); len(msgs) > 0 {
			bad("node selector %s=%s: value: %s", k, v, strings.Join(msgs, "; "))
		}
	}
	if o.ServiceAccount != "" {
		if msgs := validation.IsDNS1123Subdomain(o.ServiceAccount); len(msgs) > 0 {
			bad("service account %q: %s", o.ServiceAccount, strings.Join(msgs, "; "))
		}
	}
	for _, e := range o.Env {
		if msgs := validation.IsEnvVarName(e.Name); len(msgs) > 0 {
			bad("env %s: %s", e.Name, strings.Join(msgs, "; "))
		}
		if e.ValueFrom != nil {
			bad("env %s: plain variables only (a Secret's goes in SecretEnv)", e.Name)
		}
	}
	for _, e := range o.SecretEnv {
		if msgs := validation.IsEnvVarName(e.Name); len(msgs) > 0 {
			bad("secret env %s: %s", e.Name, strings.Join(msgs, "; "))
		}
		if msgs := validation.IsDNS1123Subdomain(e.Secret); len(msgs) > 0 {
			bad("secret env %s: secret %q: %s", e.Name, e.Secret, strings.Join(msgs, "; "))
		}
		if msgs := validation.IsConfigMapKey(e.Key); len(msgs) > 0 { // a Secret's keys follow the same rule
			bad("secret env %s: key %q: %s", e.Name, e.Key, strings.Join(msgs, "; "))
		}
	}
	for _, s := range o.EnvFromSecrets {
		if msgs := validation.IsDNS1123Subdomain(s); len(msgs) > 0 {
			bad("env from secret %q: %s", s, strings.Join(msgs, "; "))
		}
	}
	for _, v := range o.SecretVolumes {
		if msgs := validation.IsDNS1123Subdomain(v.Secret); len(msgs) > 0 {
			bad("secret volume %q: %s", v.Secret, strings.Join(msgs, "; "))
		}
		if !path.IsAbs(v.Dir) || path.Clean(v.Dir) == "/" {
			bad("secret volume %s: directory %q: want an absolute directory other than /", v.Secret, v.Dir)
		}
	}
	if o.ResultsPVC != "" {
		if msgs := validation.IsDNS1123Subdomain(o.ResultsPVC); len(msgs) > 0 {
			bad("results PVC %q: %s", o.ResultsPVC, strings.Join(msgs, "; "))
		}
	}
	if o.Linger < 0 || o.TTL < 0 || o.Duration < 0 || o.JoinTimeout < 0 {
		bad("linger, ttl, duration and join timeout must not be negative")
	}
	if o.ResultsPVC == "" && o.Linger == 0 {
		bad("without a results PVC the report lives only in shard 0's pod: give a linger time to fetch it in, or a PVC")
	}
	for name, q := range mergeLists(o.Requests, o.Limits) {
		if q.Sign() < 0 {
			bad("resources: %s %s must not be negative", name, q.String())
		}
	}
	for name, lim := range o.Limits {
		if req, ok := o.Requests[name]; ok && req.Cmp(lim) > 0 {
			bad("resources: %s request %s is more than its limit %s", name, req.String(), lim.String())
		}
	}
	seen := map[string]bool{}
	for _, f := range append([]File{o.Scenario}, o.Files...) {
		p := podPath(f.Path)
		if seen[p] {
			bad("file %s: named twice", p)
		}
		seen[p] = true
		if strings.HasPrefix(p+"/", ResultsDir+"/") {
			bad("file %s: %s is the results volume", p, ResultsDir)
		}
		for _, v := range o.SecretVolumes {
			if strings.HasPrefix(p, path.Clean(v.Dir)+"/") {
				bad("file %s: lies in secret volume %s's directory %s, which hides it", p, v.Secret, v.Dir)
			}
		}
	}
	size := 0
	for _, f := range append([]File{o.Scenario}, o.Files...) {
		size += len(f.Data)
	}
	if size > maxConfigMapBytes {
		bad("the scenario and its files hold %d bytes; a ConfigMap holds at most %d", size, maxConfigMapBytes)
	}
	return errors.Join(errs...)
}

func mergeLists(a, b corev1.ResourceList) map[corev1.ResourceName]resource.Quantity {
	m := map[corev1.ResourceName]resource.Quantity{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// podPath is where a file lies in the pod.
func podPath(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(WorkDir, p)
}

// ScenarioPath is where the scenario lies in the pod.
func (o *Options) ScenarioPath() string { return path.Join(WorkDir, path.Base(o.Scenario.Path)) }

// Render validates o and renders the run's objects.
func Render(o Options) (*Manifests, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.JoinTimeout == 0 {
		o.JoinTimeout = DefaultJoinTimeout
	}
	selector := map[string]string{LabelName: "spate", LabelInstance: o.Name}
	labels := map[string]string{LabelName: "spate", LabelInstance: o.Name, LabelManagedBy: "spate"}
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace, Labels: clone(labels)}
	}

	// The ConfigMap: the scenario, then each file, under keys of their own.
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(),
		Data:       map[string]string{},
	}
	var mounts []corev1.VolumeMount
	addFile := func(key string, f File) {
		cm.Data[key] = string(f.Data)
		mounts = append(mounts, corev1.VolumeMount{Name: "scenario", MountPath: podPath(f.Path), SubPath: key, ReadOnly: true})
	}
	addFile(configMapKey("scenario", path.Base(o.Scenario.Path)), File{Path: o.ScenarioPath(), Data: o.Scenario.Data})
	for i, f := range o.Files {
		addFile(configMapKey(fmt.Sprintf("file-%d", i+1), path.Base(f.Path)), f)
	}

	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(),
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, // headless: DNS names of the pods, no proxy
			Selector:  clone(selector),
			// The shards look pod 0 up as soon as it runs, before any
			// readiness: publish its name at once.
			PublishNotReadyAddresses: true,
			Ports: []corev1.ServicePort{{
				Name: "coordinator", Port: int32(o.Port), TargetPort: intstr.FromString("coordinator"), Protocol: corev1.ProtocolTCP,
			}},
		},
	}

	args := []string{
		"run", o.ScenarioPath(),
		"--shard", fmt.Sprintf("$(%s)/%d", JobIndexEnv, o.Shards),
		"--coordinator", Coordinator(o.Name, o.Port),
		// every interface: the other pods reach shard 0 at its pod
		// address, kubectl port-forward on its loopback
		"--listen", fmt.Sprintf(":%d", o.Port),
		"--out", path.Join(ResultsDir, o.Name),
		"--join-timeout", o.JoinTimeout.String(),
		"--progress", "log",
	}
	if o.Linger > 0 {
		args = append(args, "--linger", o.Linger.String())
	}

	resultsVolume := corev1.Volume{Name: "results", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	if o.ResultsPVC != "" {
		resultsVolume.VolumeSource = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: o.ResultsPVC}}
	}
	volumes := []corev1.Volume{
		{Name: "scenario", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: o.Name},
		}}},
		resultsVolume,
	}
	mounts = append(mounts, corev1.VolumeMount{Name: "results", MountPath: ResultsDir})
	for i, v := range o.SecretVolumes {
		name := fmt.Sprintf("secret-%d", i+1)
		volumes = append(volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: v.Secret}}})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: path.Clean(v.Dir), ReadOnly: true})
	}

	env := slices.Clone(o.Env)
	for _, e := range o.SecretEnv {
		env = append(env, corev1.EnvVar{Name: e.Name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: e.Secret}, Key: e.Key,
		}}})
	}
	var envFrom []corev1.EnvFromSource
	for _, s := range o.EnvFromSecrets {
		envFrom = append(envFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: s}}})
	}

	container := corev1.Container{
		Name:  ContainerName,
		Image: o.Image,
		// The image's entrypoint is spate; args are spate's.
		Args:         args,
		WorkingDir:   WorkDir,
		Ports:        []corev1.ContainerPort{{Name: "coordinator", ContainerPort: int32(o.Port), Protocol: corev1.ProtocolTCP}},
		Env:          env,
		EnvFrom:      envFrom,
		Resources:    corev1.ResourceRequirements{Requests: o.Requests, Limits: o.Limits},
		VolumeMounts: mounts,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr(true),
			RunAsUser:                ptr(int64(User)),
			RunAsGroup:               ptr(int64(User)),
			ReadOnlyRootFilesystem:   ptr(true),
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}

	pod := corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		// With the Job's index as host name, pod i is <name>-i.<name>.
		Subdomain:                    o.Name,
		Containers:                   []corev1.Container{container},
		Volumes:                      volumes,
		NodeSelector:                 o.NodeSelector,
		ServiceAccountName:           o.ServiceAccount,
		AutomountServiceAccountToken: ptr(false), // spate never calls the API server
		SecurityContext: &corev1.PodSecurityContext{
			FSGroup:        ptr(int64(User)), // the results volume is writable by the user
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	if o.Spread {
		pod.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: clone(selector)},
				TopologyKey:   "kubernetes.io/hostname",
			}},
		}}
	}

	n := int32(o.Shards)
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta(),
		Spec: batchv1.JobSpec{
			CompletionMode: ptr(batchv1.IndexedCompletion),
			Completions:    &n,
			Parallelism:    &n,
			// A shard that fails is not started again: a restarted shard
			// cannot rejoin a run in progress (its producers would send
			// sequence numbers again).
			BackoffLimitPerIndex: ptr(int32(0)),
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{
					// Any shard that exits non-zero ends the Job: shard 0's
					// exit code is the run's verdict (1 runtime, 2 invalid,
					// 3 thresholds failed); another shard's, its failure.
					Action: batchv1.PodFailurePolicyActionFailJob,
					OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
						ContainerName: ptr(ContainerName), Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{0},
					},
				},
				{
					// A shard evicted or preempted is lost to the run too.
					Action:          batchv1.PodFailurePolicyActionFailJob,
					OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
				},
			}},
			TTLSecondsAfterFinished: ptr(int32(o.TTL / time.Second)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: clone(labels)},
				Spec:       pod,
			},
		},
	}
	if o.Duration > 0 {
		job.Spec.ActiveDeadlineSeconds = ptr(int64((o.Duration + o.Linger + DeadlineMargin + time.Second - 1) / time.Second))
	}
	return &Manifests{ConfigMap: cm, Service: svc, Job: job}, nil
}

// JobIndexEnv is the variable the Job controller sets to each pod's index.
const JobIndexEnv = "JOB_COMPLETION_INDEX"

// configMapKey is a ConfigMap key for a file: prefix and the file's base
// name, reduced to the characters keys allow.
func configMapKey(prefix, base string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, base)
	return prefix + "." + strings.TrimLeft(clean, ".")
}

// Objects are the manifests in the order they are applied.
func (m *Manifests) Objects() []any { return []any{m.ConfigMap, m.Service, m.Job} }

// YAML renders the manifests as one YAML stream, the documents separated
// by ---, as kubectl apply -f - reads it. What the API server fills (a
// null creationTimestamp, the status) is left out.
func (m *Manifests) YAML() ([]byte, error) {
	var out []byte
	for i, obj := range m.Objects() {
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, err
		}
		delete(v, "status") // the API server's to fill
		pruneNulls(v)
		y, err := yaml.Marshal(v)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, y...)
	}
	return out, nil
}

// pruneNulls removes null values from maps, recursively.
func pruneNulls(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
				continue
			}
			pruneNulls(e)
		}
	case []any:
		for _, e := range x {
			pruneNulls(e)
		}
	}
}

// Name makes an object name from a scenario's name: "spate-" and the name
// in lower case, every other character a dash, cut to fit.
func Name(scenario string) string {
	var b strings.Builder
	b.WriteString("spate-")
	dash := true
	for _, r := range strings.ToLower(scenario) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if len(s) > 52 { // room for -<index> in pod host names
		s = strings.TrimRight(s[:52], "-")
	}
	return s
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func ptr[T any](v T) *T { return &v }
