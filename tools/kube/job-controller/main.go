// Command job-controller runs Kubernetes' own Job controller
// (k8s.io/kubernetes/pkg/controller/job) and nothing else, against the API
// server named by --kubeconfig. spate's Kubernetes test uses it with a
// kube-apiserver on loopback to see what the Job controller makes of the
// manifests spate renders; it is a fraction of kube-controller-manager's
// build. It runs until SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/kubernetes/pkg/controller/job"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server")
	workers := flag.Int("workers", 2, "concurrent Job syncs")
	flag.Parse()
	if err := run(*kubeconfig, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "job-controller:", err)
		os.Exit(1)
	}
}

func run(kubeconfig string, workers int) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	factory := informers.NewSharedInformerFactory(client, 10*time.Minute)
	jc, err := job.NewController(ctx, factory.Core().V1().Pods(), factory.Batch().V1().Jobs(), client)
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	fmt.Fprintln(os.Stderr, "job-controller: running")
	jc.Run(ctx, workers)
	factory.Shutdown()
	return nil
}
