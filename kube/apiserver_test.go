package kube

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The API-server test applies rendered manifests to a real kube-apiserver
// (with etcd) and runs Kubernetes' own Job controller against it, all on
// loopback. Nothing runs pods (there is no kubelet or scheduler): the
// pods stay Pending, which is enough to see what the Job controller makes
// of the Job, and the test plays the kubelet by writing the pods' final
// status. The binaries come from .ci/kube.sh.

// kubeBinaries is the directory of kube-apiserver, job-controller and
// etcd: $SPATE_KUBE, or where .ci/kube.sh puts them. The test skips when
// they are missing, and fails then with SPATE_REQUIRE_KUBE=1.
func kubeBinaries(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SPATE_KUBE")
	if dir == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(cache, "spate", "kube")
	}
	for _, b := range []string{"kube-apiserver", "job-controller", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			msg := fmt.Sprintf("no %s in %s: build them with .ci/kube.sh (minutes, once) or set SPATE_KUBE", b, dir)
			if os.Getenv("SPATE_REQUIRE_KUBE") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return dir
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startProcess starts a program whose output goes to a log file, stopped
// (SIGTERM, then SIGKILL) when the test ends; the log is shown if it
// failed.
func startProcess(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s's log (end):\n%s", name, b)
		}
	})
}

// apiClient calls the API server as a system:masters user.
type apiClient struct {
	base, token string
	hc          *http.Client
}

func (c *apiClient) do(method, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// must calls and fails the test unless the answer is 2xx.
func (c *apiClient) must(t *testing.T, method, path, contentType string, body []byte) []byte {
	t.Helper()
	code, b, err := c.do(method, path, contentType, body)
	if err != nil || code/100 != 2 {
		t.Fatalf("%s %s: %d %v\n%s", method, path, code, err, b)
	}
	return b
}

// startCluster starts etcd, kube-apiserver and the Job controller on
// loopback and returns a client once the API server is ready.
func startCluster(t *testing.T, bin string) *apiClient {
	t.Helper()
	dir := t.TempDir()
	// etcd
	clientPort, peerPort := freePort(t), freePort(t)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	startProcess(t, dir, "etcd", filepath.Join(bin, "etcd"), "--name", "spate", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL, "--initial-cluster", "spate="+peerURL,
		"--listen-metrics-urls", fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))

	// Service-account keys and a static token in system:masters.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	saKey, saPub := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	write := func(path string, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	write(saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	token := fmt.Sprintf("spate-test-%d", time.Now().UnixNano())
	write(filepath.Join(dir, "tokens.csv"), []byte(token+",admin,admin,system:masters\n"))

	port := freePort(t)
	startProcess(t, dir, "kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port), "--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"), "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range=10.0.0.0/24", "--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false")
	c := &apiClient{
		base: fmt.Sprintf("https://127.0.0.1:%d", port), token: token,
		// The API server's own self-signed certificate, on loopback.
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}, //nolint:gosec
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, b, err := c.do(http.MethodGet, "/readyz", "", nil)
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready within 90s: %d %v %s", code, err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}

	kubeconfig := filepath.Join(dir, "kubeconfig")
	write(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: local, context: {cluster: local, user: admin}}]
current-context: local
`, c.base, token)))
	startProcess(t, dir, "job-controller", filepath.Join(bin, "job-controller"), "--kubeconfig", kubeconfig)
	return c
}

// apply creates each object of a rendered YAML stream as kubectl apply
// would send it, with strict field validation (unknown fields refused).
func apply(t *testing.T, c *apiClient, ns string, stream []byte) {
	t.Helper()
	for _, doc := range bytes.Split(stream, []byte("\n---\n")) {
		body, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		var head struct{ Kind string }
		_ = json.Unmarshal(body, &head)
		path := map[string]string{
			"ConfigMap": "/api/v1/namespaces/" + ns + "/configmaps",
			"Service":   "/api/v1/namespaces/" + ns + "/services",
			"Job":       "/apis/batch/v1/namespaces/" + ns + "/jobs",
		}[head.Kind]
		if path == "" {
			t.Fatalf("unexpected kind %q", head.Kind)
		}
		c.must(t, http.MethodPost, path+"?fieldValidation=Strict", "application/json", body)
	}
}

// waitFor polls until check says done, for at most limit.
func waitFor(t *testing.T, limit time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, state := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, limit, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func jobPods(t *testing.T, c *apiClient, ns, job string) []corev1.Pod {
	t.Helper()
	b := c.must(t, http.MethodGet, "/api/v1/namespaces/"+ns+"/pods?labelSelector=batch.kubernetes.io/job-name%3D"+job, "", nil)
	var list corev1.PodList
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func getJob(t *testing.T, c *apiClient, ns, name string) *batchv1.Job {
	t.Helper()
	var job batchv1.Job
	if err := json.Unmarshal(c.must(t, http.MethodGet, "/apis/batch/v1/namespaces/"+ns+"/jobs/"+name, "", nil), &job); err != nil {
		t.Fatal(err)
	}
	return &job
}

func jobCondition(job *batchv1.Job, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i, c := range job.Status.Conditions {
		if c.Type == typ && c.Status == corev1.ConditionTrue {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

// finishPod writes a pod's final status as the kubelet would: its
// container terminated with exit code.
func finishPod(t *testing.T, c *apiClient, p corev1.Pod, code int32) {
	t.Helper()
	phase := corev1.PodSucceeded
	if code != 0 {
		phase = corev1.PodFailed
	}
	now := time.Now().UTC().Format(time.RFC3339)
	status := map[string]any{"status": map[string]any{
		"phase": phase,
		"containerStatuses": []map[string]any{{
			"name": ContainerName, "image": p.Spec.Containers[0].Image, "imageID": "", "ready": false, "restartCount": 0,
			"state": map[string]any{"terminated": map[string]any{"exitCode": code, "reason": map[bool]string{true: "Completed", false: "Error"}[code == 0], "startedAt": now, "finishedAt": now}},
		}},
	}}
	body, _ := json.Marshal(status)
	c.must(t, http.MethodPatch, "/api/v1/namespaces/"+p.Namespace+"/pods/"+p.Name+"/status", "application/merge-patch+json", body)
}

// TestAPIServer: the rendered manifests, applied to a real API server,
// are accepted with strict field validation (and a misspelt field is
// not); the Job controller makes one pod per shard, each with its index
// in JOB_COMPLETION_INDEX, the host name <job>-<index> and the Service as
// subdomain, so pod 0 is the --coordinator name; when every shard exits 0
// the Job completes with indexes 0-2; when shard 0 exits 3 (thresholds
// failed) the pod failure policy fails the whole Job at once, and the
// shards still running are stopped.
func TestAPIServer(t *testing.T) {
	bin := kubeBinaries(t)
	start := time.Now()
	c := startCluster(t, bin)
	t.Logf("etcd and kube-apiserver ready in %s", time.Since(start).Round(time.Millisecond))
	const ns = "spate-test"
	c.must(t, http.MethodPost, "/api/v1/namespaces", "application/json", []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"`+ns+`"}}`))
	// The manifests name service account spate (full()), which admission
	// requires to exist, as in any cluster.
	c.must(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/serviceaccounts", "application/json", []byte(`{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"spate"}}`))

	// A misspelt field is refused by the server, as by the decoding test.
	o := minimal()
	o.Namespace, o.Name = ns, "spate-typo"
	_, typo := render(t, o)
	docs := bytes.Split(typo, []byte("\n---\n"))
	bad, _ := yaml.YAMLToJSON(bytes.Replace(docs[2], []byte("backoffLimitPerIndex:"), []byte("backoffLimitPerIndx:"), 1))
	if code, b, err := c.do(http.MethodPost, "/apis/batch/v1/namespaces/"+ns+"/jobs?fieldValidation=Strict&dryRun=All", "application/json", bad); err != nil || code != http.StatusBadRequest || !strings.Contains(string(b), "backoffLimitPerIndx") {
		t.Errorf("a misspelt field: %d %v %s", code, err, b)
	}

	for _, tc := range []struct {
		name  string
		codes []int32 // exit code of each shard, in the order written
		order []int
	}{
		{name: "spate-pass", codes: []int32{0, 0, 0}, order: []int{1, 2, 0}},
		{name: "spate-fail", codes: []int32{3}, order: []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := full()
			o.Namespace, o.Name, o.Shards, o.ResultsPVC, o.Linger = ns, tc.name, 3, "", DefaultLinger
			_, stream := render(t, o)
			apply(t, c, ns, stream)

			var pods []corev1.Pod
			waitFor(t, 30*time.Second, "the Job controller makes 3 pods", func() (bool, string) {
				pods = jobPods(t, c, ns, tc.name)
				return len(pods) == 3, fmt.Sprintf("%d pods", len(pods))
			})
			byIndex := map[int]corev1.Pod{}
			for _, p := range pods {
				idx, err := strconv.Atoi(p.Annotations["batch.kubernetes.io/job-completion-index"])
				if err != nil {
					t.Fatalf("pod %s: index annotation %q", p.Name, p.Annotations["batch.kubernetes.io/job-completion-index"])
				}
				byIndex[idx] = p
				spec := p.Spec
				if want := fmt.Sprintf("%s-%d", tc.name, idx); spec.Hostname != want || spec.Subdomain != tc.name {
					t.Errorf("pod %d: hostname %q subdomain %q; want %s.%s", idx, spec.Hostname, spec.Subdomain, want, tc.name)
				}
				c := spec.Containers[0]
				var indexEnv *corev1.EnvVar
				for i, e := range c.Env {
					if e.Name == JobIndexEnv {
						indexEnv = &c.Env[i]
					}
				}
				// The kubelet fills it from the pod's index label (or, on
				// older servers, its annotation).
				if indexEnv == nil || indexEnv.ValueFrom == nil || indexEnv.ValueFrom.FieldRef == nil ||
					(indexEnv.ValueFrom.FieldRef.FieldPath != "metadata.labels['batch.kubernetes.io/job-completion-index']" &&
						indexEnv.ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']") {
					t.Errorf("pod %d: %s is %+v, want the pod's index", idx, JobIndexEnv, indexEnv)
				}
				if l := p.Labels["batch.kubernetes.io/job-completion-index"]; l != strconv.Itoa(idx) {
					t.Errorf("pod %d: index label %q", idx, l)
				}
				args := strings.Join(c.Args, " ")
				if !strings.Contains(args, "--shard $("+JobIndexEnv+")/3") || !strings.Contains(args, "--coordinator "+Coordinator(tc.name, 7171)) {
					t.Errorf("pod %d: args %q", idx, args)
				}
				if p.Status.Phase != corev1.PodPending {
					t.Errorf("pod %d: phase %s, want Pending (nothing runs pods here)", idx, p.Status.Phase)
				}
			}
			if len(byIndex) != 3 || byIndex[0].Name == "" || byIndex[2].Name == "" {
				t.Fatalf("indexes %v, want 0, 1, 2", byIndex)
			}
			var svc corev1.Service
			if err := json.Unmarshal(c.must(t, http.MethodGet, "/api/v1/namespaces/"+ns+"/services/"+tc.name, "", nil), &svc); err != nil {
				t.Fatal(err)
			}
			if svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("service cluster IP %q, want None", svc.Spec.ClusterIP)
			}

			for i, idx := range tc.order {
				finishPod(t, c, byIndex[idx], tc.codes[i])
			}
			if tc.codes[0] == 0 {
				waitFor(t, 30*time.Second, "the Job completes", func() (bool, string) {
					job := getJob(t, c, ns, tc.name)
					return jobCondition(job, batchv1.JobComplete) != nil && job.Status.CompletedIndexes == "0-2", fmt.Sprintf("%+v", job.Status)
				})
				return
			}
			var job *batchv1.Job
			waitFor(t, 30*time.Second, "the Job fails", func() (bool, string) {
				job = getJob(t, c, ns, tc.name)
				return jobCondition(job, batchv1.JobFailed) != nil, fmt.Sprintf("%+v", job.Status)
			})
			if cond := jobCondition(job, batchv1.JobFailed); cond.Reason != "PodFailurePolicy" || !strings.Contains(cond.Message, "exit code 3") {
				t.Errorf("failed: %s: %s; want the pod failure policy, exit code 3", cond.Reason, cond.Message)
			}
			// The shards still running are stopped (deleted: nothing
			// here runs their termination).
			waitFor(t, 30*time.Second, "the other shards are stopped", func() (bool, string) {
				left := 0
				for _, p := range jobPods(t, c, ns, tc.name) {
					if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodPending {
						left++
					}
				}
				return left == 0, fmt.Sprintf("%d pods still pending", left)
			})
		})
	}
}
