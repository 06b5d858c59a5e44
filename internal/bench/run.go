package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

// Config sizes a benchmark run.
type Config struct {
	Repo          string
	Out           string
	FilterSizes   []int         // users in the tenant when filter latency is measured
	ImportSizes   []int         // sizes (among FilterSizes) at which a full import is timed
	PostUsers     int           // users per POST-throughput run
	E2EUsers      int           // users provisioned end to end
	Concurrency   int           // parallel clients of the load generators
	FilterQueries int           // filter requests per size
	Repeats       int           // runs of each figure
	SiteLatency   time.Duration // latency the simulated site adds to every call
	GroupMembers  int           // members of the group pushed in the groups scenario (0 skips it)
	ProbeUsers    int           // users created one after another per time-to-site run (0 skips it)
	FillUsers     int           // users of the realistic fill (0 skips it)
	ShardUsers    int           // users per shard in the two-shard run (0 skips it)
	Scenarios     []string      // scenarios to run; empty runs defaultScenarios
}

// defaultScenarios run when none is named; "groups" has its own report (bench/groups)
// and runs only when named, which keeps `make bench` near 15 minutes on 2 cores.
var defaultScenarios = []string{"read", "fill", "e2e", "latency", "shards"}

func (c Config) runs(scenario string) bool {
	if len(c.Scenarios) == 0 {
		return slices.Contains(defaultScenarios, scenario)
	}
	return slices.Contains(c.Scenarios, scenario)
}

const (
	idpToken  = "bench-idp-token"
	siteToken = "bench-site-token"
)

type harness struct {
	cfg    Config
	env    *testenv.Env
	bin    string
	logs   string
	report *Report
	procs  []*Proc
}

// Run executes every scenario and returns the report.
func Run(cfg Config) (*Report, error) {
	started := time.Now()
	h := &harness{cfg: cfg, report: &Report{
		Commit: Commit(cfg.Repo), Started: started, Machine: DescribeMachine(),
		Sizes: map[string]int{"postUsers": cfg.PostUsers, "e2eUsers": cfg.E2EUsers, "concurrency": cfg.Concurrency,
			"filterQueries": cfg.FilterQueries, "repeats": cfg.Repeats, "maxUsers": slices.Max(cfg.FilterSizes),
			"siteLatencyMs": int(cfg.SiteLatency / time.Millisecond), "groupMembers": cfg.GroupMembers,
			"probeUsers": cfg.ProbeUsers, "fillUsers": cfg.FillUsers, "shardUsers": cfg.ShardUsers},
	}}
	tmp, err := os.MkdirTemp("", "scim-bench-")
	if err != nil {
		return nil, err
	}
	h.bin, h.logs = tmp, filepath.Join(cfg.Out, "logs")
	if err := os.MkdirAll(h.logs, 0o755); err != nil {
		return nil, err
	}
	log.Printf("building the manager and the simulator")
	if err := Build(cfg.Repo, tmp); err != nil {
		return nil, err
	}
	log.Printf("starting kube-apiserver and etcd")
	if h.env, err = testenv.Start(); err != nil {
		return nil, err
	}
	defer func() {
		for _, p := range h.procs {
			p.Stop()
		}
		_ = h.env.Stop()
	}()
	kc, err := h.env.KubeConfig()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "kubeconfig"), kc, 0o600); err != nil {
		return nil, err
	}

	for _, sc := range []struct {
		name, what string
		run        func() error
	}{{"read", "SCIM read path", h.readPath}, {"groups", "groups", h.groupPush}, {"fill", "realistic fill", h.fillScenario}, {"e2e", "end to end", h.endToEnd}, {"latency", "time to site", h.timeToSite}, {"shards", "two shards", h.shardScenario}} {
		if !cfg.runs(sc.name) {
			continue
		}
		if err := sc.run(); err != nil {
			return nil, fmt.Errorf("%s: %w", sc.what, err)
		}
	}
	h.report.Duration = time.Since(started).Round(time.Second).String()
	return h.report, nil
}

func (h *harness) figure(id, name, unit string) *Figure {
	f := &Figure{ID: id, Name: name, Unit: unit}
	h.report.Figures = append(h.report.Figures, f)
	return f
}

// site starts a simulator process and returns its SCIM base URL and admin URL.
func (h *harness) site(name string, latency time.Duration) (scimURL, admin string, err error) {
	addr, err := FreeAddr()
	if err != nil {
		return "", "", err
	}
	p, err := Start(filepath.Join(h.bin, "site-simulator"), name, h.logs, nil,
		"-addr", addr, "-token", siteToken, "-latency", latency.String())
	if err != nil {
		return "", "", err
	}
	h.procs = append(h.procs, p)
	admin = "http://" + addr
	return admin + sitesim.BasePath, admin, waitFor(30*time.Second, func() bool {
		code, _, err := call(http.MethodGet, admin+"/_sim/config", "", nil, nil)
		return err == nil && code == http.StatusOK
	})
}

// tenant creates a namespace, the token Secrets and a ScimSettings whose site rate limit
// is raised as a site admin running a bulk import would.
func (h *harness) tenant(ns, siteURL string) (*scimv1.ScimSettings, error) {
	return h.tenantWith(ns, siteURL, unlimited)
}

// tenantWith is tenant with a given site rate limit (zero fields: the CRD defaults).
func (h *harness) tenantWith(ns, siteURL string, limit siteLimit) (*scimv1.ScimSettings, error) {
	ctx := context.Background()
	c := h.env.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return nil, err
	}
	for name, token := range map[string]string{"scim-token": idpToken, "site-token": siteToken} {
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			StringData: map[string]string{"token": token}}); err != nil {
			return nil, err
		}
	}
	st := &scimv1.ScimSettings{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "okta"},
		Spec: scimv1.ScimSettingsSpec{
			BearerTokenSecretRef: scimv1.BearerTokenSecretReference{Name: "scim-token"},
			Site: scimv1.SiteSpec{URL: siteURL, TokenSecretRef: scimv1.SecretKeyReference{Name: "site-token"},
				RequestsPerSecond: limit.rps, Burst: limit.burst},
			AllowModeratorPromotion: true, AllowAdminPromotion: true,
			ResyncPeriod: &metav1.Duration{Duration: time.Hour},
		},
	}
	return st, c.Create(ctx, st)
}

type manager struct {
	proc    *Proc
	base    string // http://host:port of the SCIM listener
	scim    string // tenant base URL
	metrics string
	pprof   string // base URL of /debug/pprof
}

func (h *harness) manager(name, ns string, st *scimv1.ScimSettings, extra ...string) (*manager, error) {
	scimAddr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	metricsAddr, _ := FreeAddr()
	probeAddr, _ := FreeAddr()
	pprofAddr, _ := FreeAddr()
	args := append([]string{"--scim-bind-address=" + scimAddr, "--metrics-bind-address=" + metricsAddr,
		"--health-probe-bind-address=" + probeAddr, "--pprof-bind-address=" + pprofAddr, "--watch-namespace=" + ns,
		// The harness reads the heap gauge over plain HTTP.
		"--metrics-secure=false"}, extra...)
	p, err := Start(filepath.Join(h.bin, "manager"), name, h.logs, []string{"KUBECONFIG=" + filepath.Join(h.bin, "kubeconfig")}, args...)
	if err != nil {
		return nil, err
	}
	h.procs = append(h.procs, p)
	m := &manager{proc: p, base: "http://" + scimAddr, scim: "http://" + scimAddr + st.EffectiveBasePath(), metrics: "http://" + metricsAddr + "/metrics",
		pprof: "http://" + pprofAddr + "/debug/pprof"}
	log.Printf("%s: pprof at %s", name, m.pprof)
	// A manager serves once its cache holds every user: at 100,000 users with full status
	// the first list alone takes minutes on two shared cores.
	return m, waitFor(15*time.Minute, func() bool {
		code, _, err := call(http.MethodGet, m.scim+"/Users?count=0", idpToken, nil, nil)
		return err == nil && code == http.StatusOK
	})
}

func joinNS(nss []string) string { return strings.Join(nss, ",") }

func (m *manager) total() (int, error) {
	var lr struct {
		TotalResults int `json:"totalResults"`
	}
	_, _, err := call(http.MethodGet, m.scim+"/Users?count=0", idpToken, nil, &lr)
	return lr.TotalResults, err
}

// saveProfile writes one of the manager's pprof profiles (e.g. "heap") to path, so a
// memory figure comes with what makes it up.
func (m *manager) saveProfile(profile, path string) error {
	resp, err := httpClient.Get(m.pprof + "/" + profile)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s profile: HTTP %d", profile, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// heapMiB reads the manager's in-use heap from its metrics endpoint.
func (m *manager) heapMiB() (float64, error) {
	resp, err := httpClient.Get(m.metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f / (1 << 20), err
		}
	}
	return 0, fmt.Errorf("no go_memstats_heap_inuse_bytes in metrics")
}

func scimUser(name, externalID string) map[string]any {
	return map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":   name,
		"externalId": externalID,
		"active":     true,
		"name":       map[string]any{"givenName": "Bench", "familyName": externalID},
		"emails":     []any{map[string]any{"value": name, "primary": true, "type": "work"}},
	}
}

func stackUser(ns, name, userName string) *scimv1.StackUser {
	return &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{scimv1.LabelSettings: "okta"}},
		Spec: scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: "okta"}, UserName: userName,
			ExternalID: "ext-" + name, Emails: []scimv1.MultiValuedAttribute{{Value: userName, Primary: true, Type: "work"}}},
	}
}

// readPath measures the SCIM server alone (only the ScimSettings reconciler runs):
// POST throughput against the raw API-server create rate, filter latency and import time
// at growing sizes, and memory and CPU at rest with the largest size cached.
func (h *harness) readPath() error {
	cfg := h.cfg
	siteURL, _, err := h.site("site-read", 0)
	if err != nil {
		return err
	}
	const ns, rawNS = "bench-read", "bench-raw"
	st, err := h.tenant(ns, siteURL)
	if err != nil {
		return err
	}
	if err := h.env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rawNS}}); err != nil {
		return err
	}
	m, err := h.manager("manager-read", ns, st, "--controllers=scimsettings", "--scim-rate-limit=-1")
	if err != nil {
		return err
	}

	rawRate := h.figure("read.raw_create.rate", "raw API-server create rate (plain client)", "users/s")
	postRate := h.figure("read.post.rate", "SCIM POST create rate", "users/s")
	postP50 := h.figure("read.post.p50", "SCIM POST latency p50", "ms")
	postP99 := h.figure("read.post.p99", "SCIM POST latency p99", "ms")
	ratio := h.figure("read.post.ratio_raw", "SCIM POST rate / raw create rate", "%")
	posted := 0
	for r := range cfg.Repeats {
		log.Printf("POST throughput run %d/%d (%d users)", r+1, cfg.Repeats, cfg.PostUsers)
		start := time.Now()
		err := parallel(cfg.PostUsers, cfg.Concurrency, func(i int) error {
			return h.env.Client.Create(context.Background(), stackUser(rawNS, fmt.Sprintf("raw-%d-%d", r, i), fmt.Sprintf("raw%d-%d@example.com", r, i)))
		})
		if err != nil {
			return err
		}
		raw := float64(cfg.PostUsers) / time.Since(start).Seconds()
		rawRate.Samples = append(rawRate.Samples, raw)

		var mu sync.Mutex
		var lat []time.Duration
		start = time.Now()
		err = parallel(cfg.PostUsers, cfg.Concurrency, func(i int) error {
			name := fmt.Sprintf("post%d-%d@example.com", r, i)
			code, took, err := call(http.MethodPost, m.scim+"/Users", idpToken, scimUser(name, fmt.Sprintf("post-%d-%d", r, i)), nil)
			if err != nil {
				return fmt.Errorf("POST %s: %w", name, err)
			}
			if code != http.StatusCreated {
				return fmt.Errorf("POST %s: HTTP %d", name, code)
			}
			mu.Lock()
			lat = append(lat, took)
			mu.Unlock()
			return nil
		})
		if err != nil {
			return err
		}
		rate := float64(cfg.PostUsers) / time.Since(start).Seconds()
		posted += cfg.PostUsers
		postRate.Samples = append(postRate.Samples, rate)
		postP50.Samples = append(postP50.Samples, Percentile(lat, 50))
		postP99.Samples = append(postP99.Samples, Percentile(lat, 99))
		ratio.Samples = append(ratio.Samples, 100*rate/raw)
	}
	ratio.Check(">= 80%", 80, false)
	ratio.Explain("the manager's own work per request (HTTP, JSON in and out, the create's watch event) on the same 2 cores as kube-apiserver and etcd; the raw client pays none of it")

	filled := posted
	names := make([]string, 0, slices.Max(cfg.FilterSizes))
	for r := range cfg.Repeats {
		for i := range cfg.PostUsers {
			names = append(names, fmt.Sprintf("post%d-%d@example.com", r, i))
		}
	}
	for _, size := range cfg.FilterSizes {
		if size > filled {
			log.Printf("filling the tenant to %d users", size)
			base := filled
			if err := parallel(size-filled, 16, func(i int) error {
				n := base + i
				return h.env.Client.Create(context.Background(), stackUser(ns, fmt.Sprintf("bulk-%06d", n), fmt.Sprintf("bulk%06d@example.com", n)))
			}); err != nil {
				return err
			}
			for n := filled; n < size; n++ {
				names = append(names, fmt.Sprintf("bulk%06d@example.com", n))
			}
			filled = size
		}
		if err := waitFor(5*time.Minute, func() bool { n, err := m.total(); return err == nil && n >= filled }); err != nil {
			return fmt.Errorf("the SCIM server never saw %d users: %w", filled, err)
		}

		p50 := h.figure(fmt.Sprintf("read.filter.p50.%d", size), fmt.Sprintf("filter userName eq latency p50 @ %d users", size), "ms")
		p99 := h.figure(fmt.Sprintf("read.filter.p99.%d", size), fmt.Sprintf("filter userName eq latency p99 @ %d users", size), "ms")
		for range cfg.Repeats {
			lat := make([]time.Duration, 0, cfg.FilterQueries)
			for range cfg.FilterQueries {
				name := names[rand.IntN(len(names))]
				q := url.QueryEscape(`userName eq "` + strings.ToUpper(name[:1]) + name[1:] + `"`)
				var lr struct {
					TotalResults int `json:"totalResults"`
				}
				code, took, err := call(http.MethodGet, m.scim+"/Users?filter="+q+"&startIndex=1&count=100", idpToken, nil, &lr)
				if err != nil {
					return fmt.Errorf("filter %s: %w", name, err)
				}
				if code != http.StatusOK || lr.TotalResults != 1 {
					return fmt.Errorf("filter %s: HTTP %d, %d results", name, code, lr.TotalResults)
				}
				lat = append(lat, took)
			}
			p50.Samples = append(p50.Samples, Percentile(lat, 50))
			p99.Samples = append(p99.Samples, Percentile(lat, 99))
		}

		if slices.Contains(cfg.ImportSizes, size) {
			f := h.figure(fmt.Sprintf("read.import.%d", size), fmt.Sprintf("Okta import (count=100 pages) @ %d users", size), "s")
			for range cfg.Repeats {
				took, err := importAll(m.scim, filled)
				if err != nil {
					return err
				}
				f.Samples = append(f.Samples, took.Seconds())
			}
		}
	}

	log.Printf("measuring the manager at rest with %d users", filled)
	settle()
	rss := h.figure("read.rss", fmt.Sprintf("manager RSS at rest @ %d users", filled), "MiB")
	heap := h.figure("read.heap", fmt.Sprintf("manager heap in use at rest @ %d users", filled), "MiB")
	cpu := h.figure("read.cpu", fmt.Sprintf("manager CPU at rest @ %d users", filled), "% of a core")
	for range cfg.Repeats {
		c0, _ := m.proc.CPUSeconds()
		time.Sleep(10 * time.Second) // measuring idle CPU needs an idle window
		c1, _ := m.proc.CPUSeconds()
		cpu.Samples = append(cpu.Samples, 100*(c1-c0)/10)
		if v, err := m.proc.RSSMiB(); err == nil {
			rss.Samples = append(rss.Samples, v)
		}
		if v, err := m.heapMiB(); err == nil {
			heap.Samples = append(heap.Samples, v)
		}
	}
	rss.Note = "SCIM server alone (reconcilers off), bare users; the realistic figures are fill.*"
	if err := m.saveProfile("heap", filepath.Join(h.logs, "manager-read-heap.pprof")); err != nil {
		log.Printf("saving the manager's heap profile: %v", err)
	}
	m.proc.Stop()
	return nil
}

// settle gives the manager a moment to finish its work after the fill.
func settle() { time.Sleep(5 * time.Second) }

// importAll pages through every user as Okta's import does and checks the count.
func importAll(base string, total int) (time.Duration, error) {
	start := time.Now()
	seen := 0
	for startIndex := 1; ; startIndex += 100 {
		var lr struct {
			TotalResults int              `json:"totalResults"`
			ItemsPerPage int              `json:"itemsPerPage"`
			Resources    []map[string]any `json:"Resources"`
		}
		code, _, err := call(http.MethodGet, fmt.Sprintf("%s/Users?startIndex=%d&count=100", base, startIndex), idpToken, nil, &lr)
		if err != nil {
			return 0, fmt.Errorf("import page %d: %w", startIndex, err)
		}
		if code != http.StatusOK {
			return 0, fmt.Errorf("import page %d: HTTP %d", startIndex, code)
		}
		seen += len(lr.Resources)
		if len(lr.Resources) == 0 || seen >= lr.TotalResults {
			break
		}
	}
	if seen < total {
		return 0, fmt.Errorf("import saw %d of %d users", seen, total)
	}
	return time.Since(start), nil
}

func waitFor(timeout time.Duration, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %s", timeout)
}
