// Command run-local runs the whole operator on a machine with no cluster: a local
// kube-apiserver and etcd with the CRDs, the site simulator, a sample tenant and the
// manager (reconcilers and SCIM server) in the foreground. `make run-local` builds the
// binaries it needs and runs it from the repository root. Ctrl-C stops everything.
//
// It writes .local/kubeconfig and .local/endpoints.env (SCIM_BASE_URL, SCIM_TOKEN,
// SITE_SCIM_URL, SITE_TOKEN, KUBECONFIG, SETTINGS_NAMESPACE, SETTINGS_NAME, ...).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stackscim/stack-scim-operator/internal/manager"
)

// config is what the flags set.
type config struct {
	dir        string
	scimAddr   string
	siteAddr   string
	metrics    string
	namespace  string
	name       string
	seedUsers  int
	readyAfter time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.dir, "dir", ".local", "Folder for the kubeconfig and endpoints.env.")
	flag.StringVar(&c.scimAddr, "scim-addr", "127.0.0.1:8090", "Address of the operator's SCIM server.")
	flag.StringVar(&c.siteAddr, "site-addr", "127.0.0.1:8099", "Address of the site simulator.")
	flag.StringVar(&c.metrics, "metrics-addr", "127.0.0.1:8080", "Address of the manager's metrics endpoint; 0 disables it.")
	flag.StringVar(&c.namespace, "namespace", "scim-demo", "Namespace of the sample tenant.")
	flag.StringVar(&c.name, "name", "demo", "Name of the sample ScimSettings.")
	flag.IntVar(&c.seedUsers, "seed-users", 3, "Users present on the simulated site at start, as if they had signed in.")
	flag.DurationVar(&c.readyAfter, "ready-timeout", time.Minute, "How long to wait for the tenant to become Ready before printing the endpoints anyway.")
	zapOpts := zap.Options{Development: true}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "run-local:", err)
		os.Exit(1)
	}
}

// run starts each part in order and tears them down in reverse when ctx ends.
func run(ctx context.Context, c config) error {
	log := ctrl.Log.WithName("run-local")
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(c.dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}

	scimToken, err := randomToken()
	if err != nil {
		return err
	}
	siteToken, err := randomToken()
	if err != nil {
		return err
	}

	site, err := startSite(c.siteAddr, siteToken, c.seedUsers)
	if err != nil {
		return err
	}
	defer site.stop()
	log.Info("site simulator listening", "url", site.scimURL)

	log.Info("starting kube-apiserver and etcd")
	cp, err := startControlPlane(root, filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return err
	}
	defer cp.stop()
	log.Info("control plane running", "kubeconfig", cp.kubeconfig)

	t := tenant{namespace: c.namespace, name: c.name, scimToken: scimToken, siteToken: siteToken, siteURL: site.scimURL}
	if err := t.create(ctx, cp.client); err != nil {
		return err
	}

	mgr, err := manager.New(cp.config, manager.Options{
		SCIMAddr:    c.scimAddr,
		ExternalURL: "http://" + c.scimAddr,
		ProbeAddr:   "0",
		Metrics:     metricsserver.Options{BindAddress: c.metrics},
	})
	if err != nil {
		return err
	}

	ep := endpoints{
		scimBaseURL: "http://" + c.scimAddr + t.basePath(),
		scimToken:   scimToken,
		siteURL:     site.scimURL,
		siteToken:   siteToken,
		siteState:   site.stateURL,
		kubeconfig:  cp.kubeconfig,
		kubectl:     cp.kubectl(),
		namespace:   t.namespace,
		name:        t.name,
	}
	envFile := filepath.Join(dir, "endpoints.env")
	if err := ep.write(envFile); err != nil {
		return err
	}
	go func() {
		if err := t.waitReady(ctx, cp.client, c.readyAfter); err != nil && ctx.Err() == nil {
			log.Error(err, "the sample tenant is not Ready yet; see `kubectl describe scimsettings`", "kubeconfig", cp.kubeconfig)
		}
		if ctx.Err() == nil {
			ep.printBanner(os.Stdout, envFile)
		}
	}()

	log.Info("starting the manager; Ctrl-C stops everything")
	if err := mgr.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("manager: %w", err)
	}
	log.Info("stopping")
	return nil
}

// repoRoot is the working folder, checked to be the repository root: the CRDs and the
// tool paths are found relative to it.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(wd, "config", "crd", "bases")); err != nil {
		return "", fmt.Errorf("run it from the repository root (`make run-local`): %w", err)
	}
	return wd, nil
}
