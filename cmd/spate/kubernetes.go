package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/spate-dev/spate/drivers/kafka"
	"github.com/spate-dev/spate/drivers/rabbitmq"
	"github.com/spate-dev/spate/kube"
	"github.com/spate-dev/spate/scenarios"
)

type kubeFlags struct {
	shards         int
	image          string
	namespace      string
	name           string
	port           int
	requests       string
	limits         string
	spread         bool
	nodeSelector   map[string]string
	serviceAccount string
	env            []string
	secretEnv      []string
	envFromSecret  []string
	secretVolume   []string
	resultsPVC     string
	linger         time.Duration
	ttl            time.Duration
	joinTimeout    time.Duration
}

func newKubernetesCmd() *cobra.Command {
	var f kubeFlags
	cmd := &cobra.Command{
		Use:   "kubernetes FILE --shards N --image IMAGE",
		Short: "Print the Kubernetes manifests that run a scenario as N shards",
		Long: `kubernetes prints, for kubectl apply -f -, the objects that run the
scenario in FILE as a distributed run of N shards on Kubernetes:

  - a ConfigMap holding the scenario and the files it names (TLS roots and
    certificates; a private key must come from a Secret: --secret-volume),
  - a headless Service that names shard 0 for the others (NAME-0.NAME),
  - an Indexed Job of N pods (completions = parallelism = N), pod i running
    spate run --shard $(JOB_COMPLETION_INDEX)/N --coordinator NAME-0.NAME:PORT.
    A shard is never restarted (backoffLimitPerIndex 0: it could not rejoin)
    and any shard that fails fails the Job (podFailurePolicy), so the Job's
    status is the run's verdict: shard 0 exits with the run's exit code.

The scenario is validated as spate run --shard i/N validates it (an
external system, at least N producers and N consumers). Shard 0 writes the
report to /results/NAME: a PersistentVolumeClaim (--results-pvc), or else
a directory that goes with its pod, from which it serves the files for
--linger after the run (spate fetch-report through kubectl port-forward).
Credentials come from Secrets by name (--secret-env, --env-from-secret,
--secret-volume), never inlined: a scenario with an inline password and a
plain --env that looks like a credential are refused.

Every object is labelled app.kubernetes.io/name=spate and
app.kubernetes.io/instance=NAME; clean up with
  kubectl delete job,service,configmap -l app.kubernetes.io/name=spate,app.kubernetes.io/instance=NAME

Exit codes: 0 printed, 2 invalid scenario or flags (nothing printed).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return renderKubernetes(cmd, args[0], f, cmd.Flags().Changed("linger"))
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.shards, "shards", 0, "how many pods run the scenario (required)")
	fl.StringVar(&f.image, "image", "", "the spate container image, e.g. registry.example.com/spate:v1 (required; make image builds one)")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace of every object (default: kubectl's)")
	fl.StringVar(&f.name, "name", "", "name of the Job, Service and ConfigMap (default: spate-SCENARIO)")
	fl.IntVar(&f.port, "port", kube.DefaultPort, "the coordinator's port")
	fl.StringVar(&f.requests, "requests", "", "container resource requests, e.g. cpu=2,memory=1Gi")
	fl.StringVar(&f.limits, "limits", "", "container resource limits, e.g. cpu=2,memory=2Gi")
	fl.BoolVar(&f.spread, "spread", false, "at most one shard per node (required pod anti-affinity)")
	fl.StringToStringVar(&f.nodeSelector, "node-selector", nil, "run only on nodes with these labels, e.g. pool=loadgen (repeatable)")
	fl.StringVar(&f.serviceAccount, "service-account", "", "service account of the pods")
	fl.StringArrayVar(&f.env, "env", nil, "a plain environment variable NAME=VALUE (repeatable; never a credential: use --secret-env)")
	fl.StringArrayVar(&f.secretEnv, "secret-env", nil, "an environment variable from a Secret: NAME=SECRET[:KEY] (KEY default NAME; repeatable)")
	fl.StringArrayVar(&f.envFromSecret, "env-from-secret", nil, "every key of a Secret as an environment variable (repeatable)")
	fl.StringArrayVar(&f.secretVolume, "secret-volume", nil, "mount a Secret read-only as a directory: SECRET:DIR (repeatable), e.g. for tls.key-file")
	fl.StringVar(&f.resultsPVC, "results-pvc", "", "PersistentVolumeClaim for the report (every pod mounts it: ReadWriteMany when pods are on several nodes)")
	fl.DurationVar(&f.linger, "linger", kube.DefaultLinger, "how long shard 0 serves the report after the run (default 10m without --results-pvc, 0 with it)")
	fl.DurationVar(&f.ttl, "ttl", kube.DefaultTTL, "how long the finished Job and its pods (and logs) are kept")
	fl.DurationVar(&f.joinTimeout, "join-timeout", kube.DefaultJoinTimeout, "how long the shards wait for each other at the start, image pulls included")
	return cmd
}

func renderKubernetes(cmd *cobra.Command, file string, f kubeFlags, lingerGiven bool) error {
	invalid := func(err error) error { return &exitError{code: exitInvalid, err: err} }
	if f.shards < 1 {
		return invalid(fmt.Errorf("--shards %d: a run needs at least 1 shard", f.shards))
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return invalid(err)
	}
	if scenarios.IsSweepFile(data) {
		return invalid(fmt.Errorf("%s is a sweep file: spate kubernetes runs one scenario", file))
	}
	l := loader()
	l.Shards = f.shards
	sc, err := l.Parse(file, data)
	if err != nil {
		printProblems(cmd, err)
		return invalid(fmt.Errorf("%s is not a valid scenario for %d shards", file, f.shards))
	}

	o := kube.Options{
		Name: f.name, Namespace: f.namespace, Image: f.image, Shards: f.shards, Port: f.port,
		Scenario: kube.File{Path: file, Data: data}, Spread: f.spread, NodeSelector: f.nodeSelector,
		ServiceAccount: f.serviceAccount, EnvFromSecrets: f.envFromSecret, ResultsPVC: f.resultsPVC,
		Linger: f.linger, TTL: f.ttl, JoinTimeout: f.joinTimeout,
	}
	if o.Name == "" {
		o.Name = kube.Name(sc.Name)
	}
	if f.resultsPVC != "" && !lingerGiven {
		o.Linger = 0
	}
	// The run's own time bound, for the Job's deadline: the join, the
	// traffic and drain, and the hand-over of the shards' accounts.
	o.Duration = o.JoinTimeout + sc.Profile().Duration + sc.DrainTimeout() + time.Minute

	var errs []error
	if o.Requests, err = parseResources("--requests", f.requests); err != nil {
		errs = append(errs, err)
	}
	if o.Limits, err = parseResources("--limits", f.limits); err != nil {
		errs = append(errs, err)
	}
	for _, v := range f.secretVolume {
		secret, dir, ok := strings.Cut(v, ":")
		if !ok || secret == "" || dir == "" {
			errs = append(errs, fmt.Errorf("--secret-volume %q: want SECRET:DIR, e.g. kafka-tls:/etc/kafka-tls", v))
			continue
		}
		o.SecretVolumes = append(o.SecretVolumes, kube.SecretVolume{Secret: secret, Dir: dir})
	}
	for _, v := range f.secretEnv {
		name, ref, ok := strings.Cut(v, "=")
		secret, key, _ := strings.Cut(ref, ":")
		if !ok || name == "" || secret == "" {
			errs = append(errs, fmt.Errorf("--secret-env %q: want NAME=SECRET[:KEY], e.g. KAFKA_PASSWORD=kafka-credentials:password", v))
			continue
		}
		if key == "" {
			key = name
		}
		o.SecretEnv = append(o.SecretEnv, kube.SecretEnv{Name: name, Secret: secret, Key: key})
	}
	credentialEnv := scenarioCredentialEnv(sc)
	for _, v := range f.env {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			errs = append(errs, fmt.Errorf("--env %q: want NAME=VALUE", v))
			continue
		}
		if name == credentialEnv || credentialName.MatchString(name) {
			errs = append(errs, fmt.Errorf("--env %s: looks like a credential, which would be stored in the Job in plain text: give it from a Secret with --secret-env %s=SECRET[:KEY]", name, name))
			continue
		}
		o.Env = append(o.Env, corev1.EnvVar{Name: name, Value: value})
	}
	if credentialEnv != "" && !providesEnv(o, credentialEnv) {
		fmt.Fprintf(cmd.ErrOrStderr(), "spate: note: the scenario reads its password from $%s, which no --secret-env or --env-from-secret gives by name: give it, or make sure a Secret of --env-from-secret holds it\n", credentialEnv)
	}

	files, problems := scenarioFiles(file, sc, o.SecretVolumes)
	o.Files = files
	if len(problems) > 0 {
		printProblems(cmd, problems)
		errs = append(errs, fmt.Errorf("%s cannot run on Kubernetes as it is", file))
	}
	if warn := inlineURLPassword(sc); warn != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "spate: warning: %s\n", warn)
	}
	if len(errs) == 0 {
		m, err := kube.Render(o)
		if err != nil {
			errs = append(errs, err)
		} else {
			out, err := m.YAML()
			if err != nil {
				return &exitError{code: exitRuntime, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# spate kubernetes %s: %d shards; apply with kubectl apply -f -, watch with kubectl logs -f job/%s\n", filepath.Base(file), o.Shards, o.Name)
			_, err = cmd.OutOrStdout().Write(out)
			if err != nil {
				return &exitError{code: exitRuntime, err: err}
			}
			return nil
		}
	}
	for _, e := range errs {
		for _, line := range strings.Split(e.Error(), "\n") {
			fmt.Fprintln(cmd.ErrOrStderr(), "spate: "+line)
		}
	}
	return invalid(errors.New("no manifests printed"))
}

// credentialName matches variable names that hold credentials.
var credentialName = regexp.MustCompile(`(?i)(passw|secret|token|credential|api_?key|private_?key|access_?key|session_key)`)

// parseResources reads NAME=QUANTITY,... into a resource list.
func parseResources(flag, s string) (corev1.ResourceList, error) {
	if s == "" {
		return nil, nil
	}
	list := corev1.ResourceList{}
	for _, kv := range strings.Split(s, ",") {
		name, q, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s %q: want NAME=QUANTITY,..., e.g. cpu=2,memory=1Gi", flag, s)
		}
		v, err := resource.ParseQuantity(q)
		if err != nil {
			return nil, fmt.Errorf("%s %s=%s: %v", flag, name, q, err)
		}
		list[corev1.ResourceName(name)] = v
	}
	return list, nil
}

// providesEnv says whether o gives the variable name by name.
func providesEnv(o kube.Options, name string) bool {
	for _, e := range o.SecretEnv {
		if e.Name == name {
			return true
		}
	}
	return len(o.EnvFromSecrets) > 0
}

// scenarioCredentialEnv is the variable the scenario reads a password
// from, if any.
func scenarioCredentialEnv(sc *scenarios.Scenario) string {
	if o, ok := sc.Driver.Options.(kafka.Options); ok && o.SASL != nil {
		return o.SASL.PasswordEnv
	}
	return ""
}

// scenarioFiles reads the files the scenario names (Kafka's TLS roots and
// client certificate) for the ConfigMap, except those in a Secret's
// directory. A private key outside one, or an inline password, is a
// problem: the ConfigMap is not for secrets.
func scenarioFiles(file string, sc *scenarios.Scenario, secretDirs []kube.SecretVolume) ([]kube.File, scenarios.Problems) {
	o, ok := sc.Driver.Options.(kafka.Options)
	if !ok {
		return nil, nil
	}
	var files []kube.File
	var ps scenarios.Problems
	problem := func(n *yaml.Node, field, msg string) {
		p := scenarios.Problem{File: file, Field: "driver.kafka." + field, Message: msg}
		if n != nil {
			p.Line, p.Column = n.Line, n.Column
		}
		ps = append(ps, p)
	}
	if o.SASL != nil && o.SASL.Password != "" {
		problem(scenarios.Child(scenarios.Child(sc.Driver.Node, "sasl"), "password"), "sasl.password",
			"an inline password would be stored in the ConfigMap in plain text: use password-env, and spate kubernetes --secret-env VAR=SECRET[:KEY]")
	}
	if o.TLS == nil {
		return files, ps
	}
	inSecret := func(p string) bool {
		pp := p
		if !path.IsAbs(pp) {
			pp = path.Join(kube.WorkDir, pp)
		}
		for _, v := range secretDirs {
			if strings.HasPrefix(path.Clean(pp), path.Clean(v.Dir)+"/") {
				return true
			}
		}
		return false
	}
	tlsNode := scenarios.Child(sc.Driver.Node, "tls")
	for _, f := range []struct{ field, path string }{{"ca-file", o.TLS.CAFile}, {"cert-file", o.TLS.CertFile}, {"key-file", o.TLS.KeyFile}} {
		if f.path == "" || inSecret(f.path) {
			continue
		}
		at := scenarios.Child(tlsNode, f.field)
		if f.field == "key-file" {
			problem(at, "tls.key-file", fmt.Sprintf("a private key would be stored in the ConfigMap: put it in a Secret and mount it with --secret-volume SECRET:%s", path.Dir(filepath.ToSlash(f.path))))
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			problem(at, "tls."+f.field, fmt.Sprintf("read for the ConfigMap: %v", err))
			continue
		}
		files = append(files, kube.File{Path: filepath.ToSlash(f.path), Data: b})
	}
	return files, ps
}

// inlineURLPassword warns of a RabbitMQ URL that holds a password: it
// goes into the ConfigMap as it is (the driver reads credentials from no
// other place yet).
func inlineURLPassword(sc *scenarios.Scenario) string {
	o, ok := sc.Driver.Options.(rabbitmq.Options)
	if !ok {
		return ""
	}
	u, err := url.Parse(o.URL)
	if err != nil || u.User == nil {
		return ""
	}
	if _, has := u.User.Password(); !has {
		return ""
	}
	return "the scenario's rabbitmq url holds a password, which the ConfigMap stores in plain text: restrict who may read ConfigMaps in the namespace"
}
