package kube

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const scenario = `name: checkout
driver:
  kafka:
    brokers: [kafka-0.kafka:9093]
    tls: {ca-file: /etc/kafka-ca/ca.pem}
    sasl: {mechanism: SCRAM-SHA-512, username: spate, password-env: KAFKA_PASSWORD}
producers: 6
consumers: 6
traffic:
  - constant: {rate: 30000/s, for: 5m}
thresholds: [loss == 0]
`

// minimal is the least a user gives.
func minimal() Options {
	return Options{
		Name: "spate-checkout", Image: "registry.example.com/spate:v1", Shards: 3,
		Scenario: File{Path: "checkout.yaml", Data: []byte(scenario)}, Linger: DefaultLinger,
		Duration: 12 * time.Minute,
	}
}

// full uses every option.
func full() Options {
	o := minimal()
	o.Namespace = "load"
	o.Shards = 4
	o.Port = 7171
	o.Files = []File{{Path: "/etc/kafka-ca/ca.pem", Data: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")}, {Path: "certs/client.pem", Data: []byte("client cert")}}
	o.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	o.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}
	o.Spread = true
	o.NodeSelector = map[string]string{"pool": "loadgen"}
	o.ServiceAccount = "spate"
	o.Env = []corev1.EnvVar{{Name: "GOMEMLIMIT", Value: "1800MiB"}}
	o.SecretEnv = []SecretEnv{{Name: "KAFKA_PASSWORD", Secret: "kafka-credentials", Key: "password"}}
	o.EnvFromSecrets = []string{"aws-credentials"}
	o.SecretVolumes = []SecretVolume{{Secret: "kafka-client-key", Dir: "/etc/kafka-key"}}
	o.ResultsPVC = "spate-results"
	o.Linger = 0
	o.TTL = time.Hour
	o.JoinTimeout = 3 * time.Minute
	return o
}

func render(t *testing.T, o Options) (*Manifests, []byte) {
	t.Helper()
	m, err := Render(o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.YAML()
	if err != nil {
		t.Fatal(err)
	}
	return m, b
}

// TestGolden: the rendered manifests are the reviewed ones in testdata
// (go test ./kube -update rewrites them).
func TestGolden(t *testing.T) {
	for name, o := range map[string]Options{"minimal": minimal(), "full": full()} {
		t.Run(name, func(t *testing.T) {
			_, got := render(t, o)
			file := filepath.Join("testdata", name+".yaml")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rendered manifests differ from %s (go test ./kube -update rewrites it):\n%s", file, got)
			}
		})
	}
}

// decodeStrict decodes a YAML stream into the official API types,
// rejecting any field they do not have, and returns the objects by kind.
func decodeStrict(t *testing.T, stream []byte) (cms []*corev1.ConfigMap, svcs []*corev1.Service, jobs []*batchv1.Job) {
	t.Helper()
	for i, doc := range bytes.Split(stream, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var err error
		switch head.APIVersion + " " + head.Kind {
		case "v1 ConfigMap":
			var cm corev1.ConfigMap
			err = yaml.UnmarshalStrict(doc, &cm)
			cms = append(cms, &cm)
		case "v1 Service":
			var svc corev1.Service
			err = yaml.UnmarshalStrict(doc, &svc)
			svcs = append(svcs, &svc)
		case "batch/v1 Job":
			var job batchv1.Job
			err = yaml.UnmarshalStrict(doc, &job)
			jobs = append(jobs, &job)
		default:
			err = fmt.Errorf("unexpected object %s %s", head.APIVersion, head.Kind)
		}
		if err != nil {
			t.Fatalf("document %d (%s): %v", i, head.Kind, err)
		}
	}
	return cms, svcs, jobs
}

// TestStrictDecode: every rendered object, the golden files and the
// examples decode strictly into k8s.io/api's ConfigMap, Service and Job,
// so a misspelt field fails here; and the check itself catches one.
func TestStrictDecode(t *testing.T) {
	streams := map[string][]byte{}
	for name, o := range map[string]Options{"minimal": minimal(), "full": full()} {
		_, streams[name] = render(t, o)
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	examples, _ := filepath.Glob("../examples/kubernetes/*.yaml")
	if len(examples) == 0 {
		t.Error("no examples in examples/kubernetes")
	}
	for _, f := range append(files, examples...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "kind: Job") {
			streams[f] = b
		}
	}
	for name, s := range streams {
		cms, svcs, jobs := decodeStrict(t, s)
		if len(cms) != 1 || len(svcs) != 1 || len(jobs) != 1 {
			t.Errorf("%s: %d ConfigMaps, %d Services, %d Jobs; want one of each", name, len(cms), len(svcs), len(jobs))
		}
	}
	_, good := render(t, minimal())
	typo := bytes.Replace(good, []byte("backoffLimitPerIndex:"), []byte("backoffLimitPerIndx:"), 1)
	var job batchv1.Job
	docs := bytes.Split(typo, []byte("\n---\n"))
	if err := yaml.UnmarshalStrict(docs[len(docs)-1], &job); err == nil || !strings.Contains(err.Error(), "backoffLimitPerIndx") {
		t.Errorf("a misspelt field decoded: %v", err)
	}
}

// TestWiring checks what makes the run work: every pod's index reaches
// --shard, the coordinator's name is pod 0 in the Service's subdomain,
// the Job fails when a shard fails and never restarts one, and everything
// carries the run's labels.
func TestWiring(t *testing.T) {
	for name, o := range map[string]Options{"minimal": minimal(), "full": full()} {
		t.Run(name, func(t *testing.T) {
			m, _ := render(t, o)
			job, svc, cm := m.Job, m.Service, m.ConfigMap
			spec := job.Spec
			if *spec.CompletionMode != batchv1.IndexedCompletion || *spec.Completions != int32(o.Shards) || *spec.Parallelism != int32(o.Shards) {
				t.Errorf("completion mode %v, completions %d, parallelism %d; want Indexed, %d, %d", *spec.CompletionMode, *spec.Completions, *spec.Parallelism, o.Shards, o.Shards)
			}
			if spec.BackoffLimitPerIndex == nil || *spec.BackoffLimitPerIndex != 0 {
				t.Errorf("backoffLimitPerIndex %v, want 0", spec.BackoffLimitPerIndex)
			}
			pod := spec.Template.Spec
			if pod.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("restart policy %s", pod.RestartPolicy)
			}
			if spec.TTLSecondsAfterFinished == nil || *spec.TTLSecondsAfterFinished <= 0 {
				t.Errorf("ttlSecondsAfterFinished %v", spec.TTLSecondsAfterFinished)
			}
			if spec.ActiveDeadlineSeconds == nil || time.Duration(*spec.ActiveDeadlineSeconds)*time.Second < o.Duration+o.Linger {
				t.Errorf("activeDeadlineSeconds %v shorter than the run and its lingering (%s)", spec.ActiveDeadlineSeconds, o.Duration+o.Linger)
			}
			// The pod failure policy: a non-zero exit of the spate
			// container, or a disruption, fails the Job.
			rules := spec.PodFailurePolicy.Rules
			exitRule, disruptionRule := false, false
			for _, r := range rules {
				if r.Action != batchv1.PodFailurePolicyActionFailJob {
					continue
				}
				if e := r.OnExitCodes; e != nil && *e.ContainerName == ContainerName && e.Operator == batchv1.PodFailurePolicyOnExitCodesOpNotIn && slices.Equal(e.Values, []int32{0}) {
					exitRule = true
				}
				for _, c := range r.OnPodConditions {
					if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
						disruptionRule = true
					}
				}
			}
			if !exitRule || !disruptionRule {
				t.Errorf("pod failure policy %+v: want FailJob on any non-zero exit of %q and on DisruptionTarget", rules, ContainerName)
			}

			// DNS: the Job's pods get host names <job>-<index> and the
			// Service's name as subdomain, so pod 0 is <job>-0.<service>.
			c := pod.Containers[0]
			args := strings.Join(c.Args, " ")
			port := o.Port
			if port == 0 {
				port = DefaultPort
			}
			wantCoord := fmt.Sprintf("%s-0.%s:%d", job.Name, svc.Name, port)
			if pod.Subdomain != svc.Name || !strings.Contains(args, "--coordinator "+wantCoord) {
				t.Errorf("subdomain %q, service %q, args %q: want --coordinator %s", pod.Subdomain, svc.Name, args, wantCoord)
			}
			if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
				t.Errorf("service: clusterIP %q, publishNotReadyAddresses %v: want a headless service publishing at once", svc.Spec.ClusterIP, svc.Spec.PublishNotReadyAddresses)
			}
			for k, v := range svc.Spec.Selector {
				if spec.Template.Labels[k] != v {
					t.Errorf("the service selects %s=%s, which the pods do not carry", k, v)
				}
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != int32(port) || svc.Spec.Ports[0].TargetPort.StrVal != c.Ports[0].Name || c.Ports[0].ContainerPort != int32(port) {
				t.Errorf("service ports %+v, container ports %+v", svc.Spec.Ports, c.Ports)
			}
			// The index: Kubernetes expands $(JOB_COMPLETION_INDEX) in args.
			if !strings.Contains(args, fmt.Sprintf("--shard $(%s)/%d", JobIndexEnv, o.Shards)) {
				t.Errorf("args %q: want --shard $(%s)/%d", args, JobIndexEnv, o.Shards)
			}
			if c.Args[0] != "run" || c.Args[1] != o.ScenarioPath() || len(c.Command) != 0 {
				t.Errorf("command %q args %q: want the image's entrypoint running run %s", c.Command, c.Args, o.ScenarioPath())
			}
			// The scenario file is mounted from the ConfigMap at the path
			// the command names, with the content given.
			mounted := map[string]string{}
			for _, vm := range c.VolumeMounts {
				if vm.Name == "scenario" {
					mounted[vm.MountPath] = cm.Data[vm.SubPath]
				}
			}
			for _, f := range append([]File{{Path: o.ScenarioPath(), Data: o.Scenario.Data}}, o.Files...) {
				if got, ok := mounted[podPath(f.Path)]; !ok || got != string(f.Data) {
					t.Errorf("%s is not mounted with its content (mounts %v)", podPath(f.Path), mounted)
				}
			}
			if cm.Name != pod.Volumes[0].ConfigMap.Name {
				t.Errorf("the pods mount ConfigMap %q, the ConfigMap is %q", pod.Volumes[0].ConfigMap.Name, cm.Name)
			}
			// Labels: every object carries the run's selector.
			for _, meta := range []map[string]string{cm.Labels, svc.Labels, job.Labels, spec.Template.Labels} {
				if meta[LabelName] != "spate" || meta[LabelInstance] != o.Name {
					t.Errorf("labels %v: want %s", meta, Selector(o.Name))
				}
			}
			if o.Spread != (pod.Affinity != nil && pod.Affinity.PodAntiAffinity != nil) {
				t.Errorf("spread %v, affinity %+v", o.Spread, pod.Affinity)
			}
		})
	}
}

// TestNoSecretsInlined: credentials appear in the manifests only as
// references to Secrets by name.
func TestNoSecretsInlined(t *testing.T) {
	m, b := render(t, full())
	for _, e := range m.Job.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "KAFKA_PASSWORD" && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "kafka-credentials") {
			t.Errorf("KAFKA_PASSWORD is %+v: want a reference to Secret kafka-credentials", e)
		}
	}
	for _, want := range []string{"secretKeyRef", "name: kafka-credentials", "secretRef", "name: aws-credentials", "secretName: kafka-client-key"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("manifests lack %q", want)
		}
	}
	if bytes.Contains(b, []byte("kind: Secret")) {
		t.Error("the manifests create a Secret")
	}
	o := full()
	o.Env = append(o.Env, corev1.EnvVar{Name: "KAFKA_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "x"}}})
	if _, err := Render(o); err == nil {
		t.Error("a valueFrom in the plain env was accepted")
	}
}

// TestValidate: every problem of bad options at once.
func TestValidate(t *testing.T) {
	o := minimal()
	o.Shards = 0
	o.Image = "registry.example.com/spate v1"
	o.Name = "Spate_Checkout"
	o.NodeSelector = map[string]string{"pool": "load gen"}
	o.SecretEnv = []SecretEnv{{Name: "1X", Secret: "s", Key: "k"}}
	o.SecretVolumes = []SecretVolume{{Secret: "k", Dir: "relative"}}
	o.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}
	o.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
	_, err := Render(o)
	if err == nil {
		t.Fatal("bad options rendered")
	}
	for _, want := range []string{"at least 1 shard", "no spaces", "Spate_Checkout", "load gen", "1X", "relative", "more than its limit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, tc := range []struct {
		image string
		ok    bool
	}{
		{"spate", true}, {"ghcr.io/spate-dev/spate:v1.2.3", true}, {"localhost:5000/spate@sha256:" + strings.Repeat("a", 64), true},
		{"Spate", false}, {"spate:", false}, {"spate:v1 ", false}, {"", false}, {"http://x/spate", false},
	} {
		o := minimal()
		o.Image = tc.image
		if err := o.Validate(); (err == nil) != tc.ok {
			t.Errorf("image %q: %v", tc.image, err)
		}
	}
	o = minimal()
	o.Name = strings.Repeat("a", 62)
	o.Shards = 10
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "at most 63") {
		t.Errorf("a name too long for pod host names: %v", err)
	}
	o = minimal()
	o.Linger = 0
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "linger") {
		t.Errorf("no PVC and no linger: %v", err)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{"checkout": "spate-checkout", "Checkout Spike_2": "spate-checkout-spike-2", "--x--": "spate-x", strings.Repeat("a", 80): "spate-" + strings.Repeat("a", 46)} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}
