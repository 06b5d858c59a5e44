// Command manager runs the stack-scim-operator: the StackUser and ScimSettings
// reconcilers (on the elected leader) and the SCIM 2.0 server (on every replica).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	// The image has no CA bundle (it is built from scratch): the binary carries its own
	// roots for the sites' TLS, used when the system has none.
	_ "golang.org/x/crypto/x509roots/fallback"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stackscim/stack-scim-operator/internal/manager"
	"github.com/stackscim/stack-scim-operator/internal/version"
)

func main() {
	var opts manager.Options
	fs := flag.CommandLine
	fs.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8443", "Address of the Prometheus metrics endpoint; 0 disables it.")
	metricsSecure := fs.Bool("metrics-secure", true, "Serve metrics over HTTPS, only to callers whose bearer token the API server authenticates (TokenReview) and authorizes for GET /metrics (SubjectAccessReview); false serves plain HTTP to anyone who can reach the port.")
	metricsCertDir := fs.String("metrics-cert-dir", "", "Folder with tls.crt and tls.key for the metrics endpoint; a self-signed certificate when empty.")
	fs.StringVar(&opts.ProbeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz probes.")
	fs.StringVar(&opts.PprofAddr, "pprof-bind-address", "", "Address of the /debug/pprof endpoints; off when empty. Do not expose it.")
	fs.BoolVar(&opts.LeaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles; every replica serves SCIM.")
	fs.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (defaults to the pod's namespace).")
	fs.StringVar(&opts.LeaderElectionID, "leader-election-id", manager.DefaultLeaderElectionID, "Name of the leader election Lease; each shard of a sharded install has its own.")
	fs.StringVar(&opts.SCIMAddr, "scim-bind-address", ":8090", "Address of the SCIM 2.0 server.")
	fs.StringVar(&opts.SCIMCertFile, "scim-tls-cert-file", "", "TLS certificate for the SCIM server (reloaded on change); plain HTTP when empty.")
	fs.StringVar(&opts.SCIMKeyFile, "scim-tls-key-file", "", "TLS private key for the SCIM server.")
	fs.StringVar(&opts.ExternalURL, "scim-external-url", "", "Public base URL of the SCIM server (the Ingress), e.g. https://scim.example.com; shown in ScimSettings status.")
	fs.DurationVar(&opts.DrainTimeout, "shutdown-drain-timeout", manager.DefaultDrainTimeout, "On SIGTERM, how long to wait for in-flight SCIM requests after turning unready; at least the SCIM write budget (55 s). The pod's terminationGracePeriodSeconds must cover it plus the preStop delay.")
	fs.StringVar(&opts.WatchNamespace, "watch-namespace", "", "Only watch these namespaces, comma-separated (all namespaces when empty); the manager then needs a Role in each, no ClusterRole.")
	fs.DurationVar(&opts.SyncPeriod, "sync-period", 10*time.Hour, "How often the informer caches are relisted.")
	fs.Float64Var(&opts.SCIMRateLimit, "scim-rate-limit", 0, "Sustained SCIM requests per second per tenant before 429 (0: 200; negative: unlimited).")
	fs.IntVar(&opts.SCIMRateBurst, "scim-rate-burst", 0, "SCIM request burst per tenant (0: 400).")
	listSiteAccounts := fs.Bool("scim-list-site-accounts", true, "List the site accounts no StackUser describes in SCIM /Users, marked unmanaged (never changed), so an identity provider's import can match and link them; false lists StackUsers only.")
	fs.DurationVar(&opts.SCIMSiteAccounts.TTL, "scim-site-accounts-ttl", 0, "How long a replica reuses its listing of a tenant's site accounts (0: 1m; at least ten times as long as the listing took).")
	fs.IntVar(&opts.Reconcilers.MaxConcurrentReconciles, "max-concurrent-reconciles", 0, "Parallel StackUser reconciles (0: 32).")
	fs.Float64Var(&opts.Reconcilers.EventQPS, "event-qps", 0, "Audit Events sent per second at most (0: 20); status.history and the log keep every entry.")
	fs.IntVar(&opts.Reconcilers.EventBurst, "event-burst", 0, "Audit Event burst (0: 200).")
	kubeQPS := fs.Float64("kube-api-qps", 500, "Client-side QPS towards the Kubernetes API server (a bulk SCIM push makes about 2 writes per user; the API server's priority and fairness is the real guard).")
	kubeBurst := fs.Int("kube-api-burst", 1000, "Client-side burst towards the Kubernetes API server.")
	controllersFlag := fs.String("controllers", "*", "Comma-separated reconcilers to run: stackuser, scimsettings, or * for all.")
	memoryLimitRatio := fs.Float64("memory-limit-ratio", 0.9, "Go soft memory limit as a fraction of the container's memory limit (GOMEMLIMIT, when set, wins; 0 disables).")
	gcPercent := fs.Int("gc-percent", 50, "Go GC target: collect when the heap has grown this many percent over the live data (GOGC, when set, wins). The heap is mostly the long-lived informer cache, so 50 keeps the footprint near 1.5x the cache for little CPU.")
	printVersion := fs.Bool("version", false, "Print the version, commit and build date, and exit.")
	zapOpts := zap.Options{Development: false, TimeEncoder: zapcore.ISO8601TimeEncoder}
	zapOpts.BindFlags(fs)
	flag.Parse()
	if *printVersion {
		fmt.Println(version.String())
		return
	}

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	if os.Getenv("GOGC") == "" && *gcPercent > 0 {
		debug.SetGCPercent(*gcPercent)
	}
	if limit := manager.SetMemoryLimit(*memoryLimitRatio); limit > 0 {
		log.Info("Go soft memory limit set from the container's memory limit", "bytes", limit)
	}

	opts.SCIMHideSiteAccounts = !*listSiteAccounts
	opts.Controllers = strings.Split(*controllersFlag, ",")
	opts.Metrics = metricsserver.Options{BindAddress: opts.MetricsAddr}
	if *metricsSecure {
		// As kubebuilder projects do: the scraper (Prometheus) presents its ServiceAccount
		// token and needs the chart's metrics-reader ClusterRole.
		opts.Metrics.SecureServing = true
		opts.Metrics.FilterProvider = filters.WithAuthenticationAndAuthorization
		opts.Metrics.CertDir = *metricsCertDir
	}
	cfg := ctrl.GetConfigOrDie()
	cfg.QPS, cfg.Burst = float32(*kubeQPS), *kubeBurst
	mgr, err := manager.New(cfg, opts)
	if err != nil {
		log.Error(err, "unable to set up the manager")
		os.Exit(1)
	}
	log.Info("starting manager", "version", version.Version, "commit", version.Commit, "built", version.Date)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped")
		os.Exit(1)
	}
}
