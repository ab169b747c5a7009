package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/spate-dev/spate/kube"
	"github.com/spate-dev/spate/report"
)

// manifests decodes spate kubernetes's output strictly into the API types.
func manifests(t *testing.T, out string) (*corev1.ConfigMap, *corev1.Service, *batchv1.Job) {
	t.Helper()
	var cm corev1.ConfigMap
	var svc corev1.Service
	var job batchv1.Job
	docs := strings.Split(out, "\n---\n")
	if len(docs) != 3 {
		t.Fatalf("%d documents, want 3:\n%s", len(docs), out)
	}
	for i, v := range []any{&cm, &svc, &job} {
		if err := yaml.UnmarshalStrict([]byte(docs[i]), v); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
	}
	return &cm, &svc, &job
}

// TestKubernetesBadInput: what cannot run is refused with exit 2, the
// reason and, for the scenario's own problems, file:line; nothing is
// printed on stdout.
func TestKubernetesBadInput(t *testing.T) {
	t.Parallel()
	external := writeScenario(t, `
name: k8s-bad
driver: {kafka: {brokers: [kafka:9092]}}
producers: 2
consumers: 3
traffic:
  - constant: {rate: 100/s, for: 1s}
`)
	embedded := writeScenario(t, `
name: k8s-embedded
driver: {kafka: {brokers: embedded}}
producers: 2
consumers: 2
traffic:
  - constant: {rate: 100/s, for: 1s}
`)
	managed := writeScenario(t, `
name: k8s-managed
driver: {rabbitmq: {url: managed}}
producers: 2
consumers: 2
traffic:
  - constant: {rate: 100/s, for: 1s}
`)
	inline := writeScenario(t, `
name: k8s-inline
driver:
  kafka:
    brokers: [kafka:9092]
    tls: {key-file: /tmp/key.pem, cert-file: /tmp/cert.pem}
    sasl: {mechanism: SCRAM-SHA-512, username: u, password: hunter2}
producers: 2
consumers: 2
traffic:
  - constant: {rate: 100/s, for: 1s}
`)
	img := []string{"--image", "spate:test"}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no shards", append([]string{"kubernetes", external, "--shards", "0"}, img...), []string{"--shards 0: a run needs at least 1 shard"}},
		{"negative shards", append([]string{"kubernetes", external, "--shards", "-1"}, img...), []string{"at least 1 shard"}},
		{"more shards than producers", append([]string{"kubernetes", external, "--shards", "3"}, img...), []string{external + ":4:12: producers:", "3 shards"}},
		{"image with a space", []string{"kubernetes", external, "--shards", "2", "--image", "spate: v1"}, []string{`image "spate: v1": an image name has no spaces`}},
		{"no image", []string{"kubernetes", external, "--shards", "2"}, []string{"image: required"}},
		{"embedded", append([]string{"kubernetes", embedded, "--shards", "2"}, img...), []string{embedded + ":3:", "embedded"}},
		{"managed", append([]string{"kubernetes", managed, "--shards", "2"}, img...), []string{managed + ":3:", "managed"}},
		{"inline credentials", append([]string{"kubernetes", inline, "--shards", "2"}, img...), []string{
			inline + ":7:61: driver.kafka.sasl.password: an inline password",
			inline + ":6:21: driver.kafka.tls.key-file: a private key would be stored in the ConfigMap",
		}},
		{"credential in --env", append([]string{"kubernetes", external, "--shards", "2", "--env", "AWS_SECRET_ACCESS_KEY=abc", "--env", "PLAIN=ok"}, img...), []string{"--env AWS_SECRET_ACCESS_KEY: looks like a credential"}},
		{"bad secret env", append([]string{"kubernetes", external, "--shards", "2", "--secret-env", "X"}, img...), []string{"--secret-env \"X\": want NAME=SECRET[:KEY]"}},
		{"bad resources", append([]string{"kubernetes", external, "--shards", "2", "--requests", "cpu=lots"}, img...), []string{"--requests cpu=lots"}},
		{"name", append([]string{"kubernetes", external, "--shards", "2", "--name", "Not_A_Name"}, img...), []string{`name "Not_A_Name"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := spate(t, tc.args...)
			if r.code != exitInvalid || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing printed\n%s", r.code, r.stdout, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

// TestKubernetesExample: examples/kubernetes/checkout-kafka.k8s.yaml is
// what the command in its README renders today.
func TestKubernetesExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../examples/kubernetes/README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)spate kubernetes (examples/kubernetes/checkout-kafka\.yaml[^>]*?)\s*>\s*examples/kubernetes/checkout-kafka\.k8s\.yaml`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md shows no `spate kubernetes ... > examples/kubernetes/checkout-kafka.k8s.yaml`")
	}
	args := strings.Fields(strings.ReplaceAll(string(m[1]), "\\", " "))
	cmd := exec.Command(binary, append([]string{"kubernetes"}, args...)...)
	cmd.Dir = "../.."
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("spate kubernetes %s: %v", strings.Join(args, " "), err)
	}
	want, _ := os.ReadFile("../../examples/kubernetes/checkout-kafka.k8s.yaml")
	if !bytes.Equal(got, want) {
		t.Errorf("examples/kubernetes/checkout-kafka.k8s.yaml is not what its README's command renders; rerun it:\n%s", got)
	}
	_, _, job := manifests(t, string(got))
	if !strings.Contains(string(got), "secretKeyRef") || strings.Contains(string(got), "password:") {
		t.Error("the example's credentials are not from a Secret")
	}
	if job.Spec.Template.Spec.Affinity == nil {
		t.Error("the example does not spread its shards")
	}
}

// expandArgs does what the kubelet does to a container's args: $(NAME)
// becomes the variable's value when env defines it, $$ a literal $.
func expandArgs(args []string, env map[string]string) []string {
	re := regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = re.ReplaceAllStringFunc(a, func(m string) string {
			if m == "$$" {
				return "$"
			}
			if v, ok := env[m[2:len(m)-1]]; ok {
				return v
			}
			return m
		})
	}
	return out
}

// pod is one pod of the rendered Job played as a local process: its
// volumes are directories under root, filled from the ConfigMap as the
// kubelet fills them.
type pod struct {
	root string
	proc *shardProc
}

// startPods runs the rendered Job's pods as local processes: for each
// index, the container's args (the image's entrypoint is spate) with
// $(JOB_COMPLETION_INDEX) expanded from the environment the Job controller
// gives the pod, every path inside a mount moved under the pod's own root
// directory, the working directory the container's, and the coordinator's
// DNS name (pod 0 in the Service's subdomain) resolved to loopback. No
// argument is added: what runs is what the Job says.
func startPods(t *testing.T, cm *corev1.ConfigMap, svc *corev1.Service, job *batchv1.Job) []*pod {
	t.Helper()
	spec := job.Spec.Template.Spec
	c := spec.Containers[0]
	if len(c.Command) != 0 {
		t.Fatalf("the container overrides the entrypoint: %q", c.Command)
	}
	var pods []*pod
	for i := range int(*job.Spec.Completions) {
		p := &pod{root: filepath.Join(t.TempDir(), fmt.Sprintf("pod%d", i))}
		env := map[string]string{kube.JobIndexEnv: strconv.Itoa(i)}
		var environ []string
		for _, e := range c.Env {
			if e.ValueFrom != nil {
				t.Fatalf("env %s is from %+v: this test has no Secrets", e.Name, e.ValueFrom)
			}
			env[e.Name] = e.Value
			environ = append(environ, e.Name+"="+e.Value)
		}
		var mountPaths []string
		for _, m := range c.VolumeMounts {
			at := filepath.Join(p.root, m.MountPath)
			mountPaths = append(mountPaths, m.MountPath)
			if m.SubPath != "" { // a file of the ConfigMap
				data, ok := cm.Data[m.SubPath]
				if !ok {
					t.Fatalf("mount %s: the ConfigMap has no key %q", m.MountPath, m.SubPath)
				}
				if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(at, []byte(data), 0o444); err != nil {
					t.Fatal(err)
				}
			} else if err := os.MkdirAll(at, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		args := expandArgs(c.Args, env)
		for j, a := range args {
			for _, mp := range mountPaths {
				if a == mp || strings.HasPrefix(a, mp+"/") {
					args[j] = filepath.Join(p.root, a)
				}
			}
		}
		wd := filepath.Join(p.root, c.WorkingDir)
		if err := os.MkdirAll(wd, 0o755); err != nil {
			t.Fatal(err)
		}
		sp := &shardProc{out: filepath.Join(p.root, kube.ResultsDir, job.Name)}
		sp.cmd = exec.Command(binary, args...)
		sp.cmd.Dir = wd
		coordinatorHost := fmt.Sprintf("%s-0.%s", job.Name, spec.Subdomain)
		sp.cmd.Env = append(append(os.Environ(), environ...),
			kube.JobIndexEnv+"="+strconv.Itoa(i),
			envTestHosts+"="+coordinatorHost+"=127.0.0.1,=127.0.0.1") // --listen :PORT on loopback
		sp.cmd.Stdout, sp.cmd.Stderr = &sp.stdout, &sp.stderr
		if err := sp.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.proc = sp
		pods = append(pods, p)
	}
	t.Cleanup(func() {
		for _, p := range pods {
			if p.proc.cmd.ProcessState == nil {
				_ = p.proc.cmd.Process.Kill()
				_ = p.proc.cmd.Wait()
			}
		}
	})
	_ = svc
	return pods
}

// TestKubernetesPodsRun: the rendered Job's pod command line, run as
// three local processes with JOB_COMPLETION_INDEX set and the
// coordinator's name on loopback, completes a real run against `spate
// serve kafka`: the other shards hand over and exit 0, shard 0 writes the
// merged report, prints where results.json is, serves the report
// (--linger) until spate fetch-report --done has it, then exits with the
// run's exit code; the fetched files are byte for byte shard 0's.
func TestKubernetesPodsRun(t *testing.T) {
	t.Parallel()
	brokers := servedKafka(t)
	file := writeScenario(t, fmt.Sprintf(`
name: k8s-pods
driver: {kafka: {brokers: [%s], topic: k8s-%d, partitions: 6}}
producers: 3
consumers: 3
traffic:
  - constant: {rate: 1000/s, for: 2s}
drain: 10s
thresholds: [loss == 0, duplicates == 0]
`, brokers, time.Now().UnixNano()))
	_, port, _ := strings.Cut(freeAddr(t), ":")
	r := spate(t, "kubernetes", file, "--shards", "3", "--image", "spate:test", "--port", port, "--linger", "2m", "--join-timeout", "60s")
	if r.code != 0 {
		t.Fatalf("spate kubernetes exited %d: %s", r.code, r.stderr)
	}
	cm, svc, job := manifests(t, r.stdout)
	if !strings.Contains(strings.Join(job.Spec.Template.Spec.Containers[0].Args, " "), "--coordinator spate-k8s-pods-0.spate-k8s-pods:"+port) {
		t.Fatalf("args %q", job.Spec.Template.Spec.Containers[0].Args)
	}
	pods := startPods(t, cm, svc, job)
	for i, p := range pods[1:] {
		if code := p.proc.wait(t, 2*time.Minute); code != 0 {
			t.Fatalf("shard %d exited %d:\n%s\n%s", i+1, code, p.proc.stdout.String(), p.proc.stderr.String())
		}
	}
	// Shard 0 lingers: fetch its report as a user would.
	coordinator := pods[0].proc
	fetched := filepath.Join(t.TempDir(), "fetched")
	f := spate(t, "fetch-report", "127.0.0.1:"+port, "-o", fetched, "--done", "--wait", "2m")
	if f.code != 0 {
		t.Fatalf("fetch-report exited %d: %s\nshard 0:\n%s", f.code, f.stderr, coordinator.stderr.String())
	}
	if code := coordinator.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("shard 0 exited %d:\n%s\n%s", code, coordinator.stdout.String(), coordinator.stderr.String())
	}
	stderr := coordinator.stderr.String()
	for _, want := range []string{"results: " + filepath.Join(coordinator.out, "results.json"), "serving the report on 127.0.0.1:" + port, "the report was fetched"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("shard 0's log lacks %q:\n%s", want, stderr)
		}
	}
	res := readRun(t, coordinator.out)
	if c := res.Counts; c.Sent != 2000 || c.Received != 2000 || c.Lost != 0 || c.Duplicates != 0 || len(res.Shards.Each) != 3 {
		t.Errorf("counts %+v over %d shards: want 2,000 sent and received over 3", c, len(res.Shards.Each))
	}
	if res.Verdict != report.Pass {
		t.Errorf("verdict %s", res.Verdict)
	}
	// Every file of shard 0's report, and nothing else, byte for byte.
	var want []string
	_ = filepath.WalkDir(coordinator.out, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") { // the run's lock is not the report's
			rel, _ := filepath.Rel(coordinator.out, p)
			want = append(want, rel)
		}
		return nil
	})
	if len(want) < 10 {
		t.Fatalf("shard 0's report holds %d files: %v", len(want), want)
	}
	for _, rel := range want {
		a, _ := os.ReadFile(filepath.Join(coordinator.out, rel))
		b, err := os.ReadFile(filepath.Join(fetched, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: fetched %d bytes (%v), shard 0 has %d", rel, len(b), err, len(a))
		}
	}
	if !strings.Contains(f.stdout, fmt.Sprintf("fetched %d files", len(want))) {
		t.Errorf("fetch-report: %q, want %d files", f.stdout, len(want))
	}
}

// TestLingerOneProcess: a run in one process with --linger serves its
// report on --coordinator's address; spate fetch-report gets it while it
// lingers, and SIGTERM ends the lingering with the run's exit code.
func TestLingerOneProcess(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	out := filepath.Join(t.TempDir(), "run")
	p := &shardProc{out: out}
	p.cmd = exec.Command(binary, "run", writeScenario(t, passing), "--progress", "off", "--out", out,
		"--shard", "0/1", "--coordinator", addr, "--linger", "2m")
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	fetched := t.TempDir()
	f := spate(t, "fetch-report", addr, "-o", fetched, "--wait", "1m")
	if f.code != 0 {
		t.Fatalf("fetch-report exited %d: %s", f.code, f.stderr)
	}
	a, _ := os.ReadFile(filepath.Join(out, "results.json"))
	b, _ := os.ReadFile(filepath.Join(fetched, "results.json"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("fetched results.json (%d bytes) differs from the run's (%d)", len(b), len(a))
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM while lingering, want the run's 0:\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "stopped serving the report: interrupted") {
		t.Errorf("log:\n%s", p.stderr.String())
	}
	if r := spate(t, "fetch-report", addr, "--wait", "1s", "-o", t.TempDir()); r.code != exitRuntime {
		t.Errorf("fetch-report from a process that ended: exit %d, want 1", r.code)
	}
}
