// Package server is the in-cluster SCIM 2.0 server (RFC 7644). Each ScimSettings is a
// tenant served under its own base path; Users are StackUser resources in the tenant's
// namespace. Reads come from the manager's informer cache through field indexes; writes
// go to the API server and are answered once durable, without waiting for the site.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/clip"
	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
	"github.com/stackscim/stack-scim-operator/internal/scim/userview"
	"github.com/stackscim/stack-scim-operator/internal/site"
	"github.com/stackscim/stack-scim-operator/internal/sitedir"
	"github.com/stackscim/stack-scim-operator/internal/tenant"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxCount       = 1000
	DefaultRateLimit      = 200
	DefaultRateBurst      = 400
	DefaultStatusInterval = 5 * time.Second
	// DefaultAuthFailureRate and DefaultAuthFailureBurst: a client address may fail
	// authentication 20 times at once, then once a second, per tenant.
	DefaultAuthFailureRate  = 1
	DefaultAuthFailureBurst = 20
)

// Options configure a Server.
type Options struct {
	// Client reads through the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads the API server directly: the fallback for a just-created user
	// that the cache has not seen yet.
	APIReader client.Reader
	// Tenants reads tenants and their Secrets (internal/tenant.Reader); Client when nil.
	Tenants client.Reader
	// Cache is waited for before any request is answered.
	Cache cache.Cache
	// Events receives the audit Events; may be nil.
	Events events.EventRecorder
	// Log receives request and audit logs.
	Log logr.Logger
	// ExternalURL is the public base URL (scheme://host[:port]) used in meta.location;
	// when empty, it is derived from X-Forwarded-Proto/X-Forwarded-Host or Host.
	ExternalURL string
	// MaxBodyBytes caps request bodies (413 above); default 1 MiB.
	MaxBodyBytes int64
	// MaxCount caps the page size of list responses; default 1000.
	MaxCount int
	// RateLimit is each tenant's sustained requests per second (default 200; negative
	// disables limiting) and RateBurst its burst (default 400).
	RateLimit float64
	RateBurst int
	// AuthFailureRate is the sustained rate of failed authentications per second a
	// client address may cause per tenant before it gets 429 instead of 401 (default 1;
	// negative disables limiting), AuthFailureBurst its burst (default 20).
	AuthFailureRate  float64
	AuthFailureBurst int
	// StatusInterval is the minimum time between two ScimSettings status writes of one
	// tenant; default 5 s.
	StatusInterval time.Duration
	// Sites hands out each tenant's rate-limited site client. When set, user lists and
	// lookups also show the site accounts no StackUser describes, marked unmanaged, so an
	// identity provider's import can match and link them (unmanaged.go); nil shows
	// StackUsers only. The server only ever lists the site: it never writes to it.
	Sites *site.Clients
	// SiteAccounts tunes the per-tenant snapshot of site accounts (TTL, waits, bounds);
	// its Source, Keep and Log are the server's own.
	SiteAccounts sitedir.Options
}

// Server serves every tenant. It is an http.Handler and a manager Runnable (which waits
// for the cache and runs the status writer); it runs on every replica.
type Server struct {
	opts     Options
	log      logr.Logger
	ready    atomic.Bool
	limiters *limiters
	// authFailures is the per-tenant, per-source budget of failed authentications.
	authFailures *limiters
	status       *statusRecorder
	recorder     *audit.Recorder
	recent       recentWrites
	own          ownWrites
	// users is the ordered per-tenant view that lists page through; set in Start
	// (before ready), nil when the server runs without a cache.
	users *userview.View
	// sites holds the snapshots of the tenants' site accounts; nil when Options.Sites is.
	sites *sitedir.Directory
	// unmanaged caches, per tenant, which snapshot accounts no StackUser describes.
	unmanaged unmanagedCache
}

// New returns a Server; call Start (or add it to a manager) before serving.
func New(opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxCount <= 0 {
		opts.MaxCount = DefaultMaxCount
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.RateBurst <= 0 {
		opts.RateBurst = max(DefaultRateBurst, int(opts.RateLimit*2))
	}
	if opts.AuthFailureRate == 0 {
		opts.AuthFailureRate = DefaultAuthFailureRate
	}
	if opts.AuthFailureBurst <= 0 {
		opts.AuthFailureBurst = DefaultAuthFailureBurst
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = DefaultStatusInterval
	}
	opts.ExternalURL = strings.TrimRight(opts.ExternalURL, "/")
	if opts.Tenants == nil {
		opts.Tenants = opts.Client
	}
	s := &Server{
		opts:         opts,
		log:          opts.Log,
		limiters:     newLimiters(opts.RateLimit, opts.RateBurst),
		authFailures: newLimiters(opts.AuthFailureRate, opts.AuthFailureBurst),
		status:       newStatusRecorder(opts.Client, opts.Log.WithName("status"), opts.StatusInterval),
		recorder:     &audit.Recorder{Client: opts.Client, Events: opts.Events, Log: opts.Log.WithName("audit")},
	}
	s.recent.m = map[types.NamespacedName]recentEntry{}
	if opts.Sites != nil {
		s.sites = s.newDirectory(opts.SiteAccounts)
	}
	return s
}

// NeedLeaderElection is false: every replica serves SCIM.
func (s *Server) NeedLeaderElection() bool { return false }

// Start waits until the informers the server reads are synced, opens the server for
// requests, and writes tenant status until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if s.opts.Cache != nil {
		for _, obj := range []client.Object{&scimv1.ScimSettings{}, tenant.SecretMetadata(), &scimv1.StackGroup{}} {
			if _, err := s.opts.Cache.GetInformer(ctx, obj); err != nil {
				return fmt.Errorf("starting informer for %T: %w", obj, err)
			}
		}
		users, err := s.opts.Cache.GetInformer(ctx, &scimv1.StackUser{})
		if err != nil {
			return fmt.Errorf("starting informer for StackUsers: %w", err)
		}
		view := userview.New()
		reg, err := users.AddEventHandler(view)
		if err != nil {
			return fmt.Errorf("watching StackUsers: %w", err)
		}
		if !s.opts.Cache.WaitForCacheSync(ctx) || !toolscache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
			return fmt.Errorf("SCIM server: caches did not sync")
		}
		s.users = view
	}
	s.ready.Store(true)
	s.log.Info("SCIM server ready")
	go s.recent.gc(ctx)
	s.status.Run(ctx)
	// Last words: write what is pending, briefly.
	flushCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s.status.flush(flushCtx, true)
	return nil
}

// Ready reports whether the server answers requests (its caches are synced).
func (s *Server) Ready() bool { return s.ready.Load() }

// resource names, matched case-insensitively.
var resources = map[string]string{
	"users":                  "Users",
	"groups":                 "Groups",
	"serviceproviderconfig":  "ServiceProviderConfig",
	"serviceproviderconfigs": "ServiceProviderConfig",
	"resourcetypes":          "ResourceTypes",
	"schemas":                "Schemas",
	"bulk":                   "Bulk",
	"me":                     "Me",
}

// request is one routed request.
type request struct {
	r         *http.Request
	w         http.ResponseWriter
	id        string // request id
	settings  *scimv1.ScimSettings
	tenant    types.NamespacedName
	resource  string   // canonical resource name
	rest      []string // path segments after the resource
	baseURL   string   // absolute tenant base URL
	operation string   // e.g. "GET /Users/{id}"
}

func (q *request) tenantName() string { return q.tenant.Namespace + "/" + q.tenant.Name }

// ServeHTTP routes a request to its tenant and handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &responseWriter{ResponseWriter: w}
	q := &request{r: r, w: rw, id: requestID(r), operation: methodLabel(r.Method) + " (unknown)"}
	rw.Header().Set("X-Request-Id", q.id)
	tenantLabel := ""
	defer func() {
		if p := recover(); p != nil {
			s.log.Error(fmt.Errorf("panic: %v", p), "SCIM handler panicked", "requestId", q.id)
			if rw.status == 0 {
				writeError(rw, r, &scimerr.Error{Status: http.StatusInternalServerError, Detail: "internal error; the request was logged"})
			}
		}
		if rw.status == 0 {
			rw.status = http.StatusOK
		}
		d := time.Since(start)
		code := strconv.Itoa(rw.status)
		requestsTotal.WithLabelValues(tenantLabel, q.operation, code).Inc()
		requestDuration.WithLabelValues(tenantLabel, q.operation).Observe(d.Seconds())
		kv := []any{"requestId", q.id, "method", r.Method, "path", r.URL.Path, "operation", q.operation,
			"status", rw.status, "duration", d.String(), "userAgent", r.UserAgent(), "remote", remoteAddr(r)}
		if tenantLabel != "" {
			kv = append(kv, "tenant", tenantLabel)
		}
		if rw.detail != "" {
			kv = append(kv, "detail", rw.detail)
		}
		s.log.Info("SCIM request", kv...)
	}()
	if !s.ready.Load() {
		rw.Header().Set("Retry-After", "5")
		writeError(rw, r, scimerr.New(http.StatusServiceUnavailable, "", "the SCIM server is starting; retry in a few seconds"))
		return
	}
	if err := s.route(q); err != nil {
		writeError(rw, r, toSCIMError(err))
		return
	}
	tenantLabel = q.tenantName()
	q.operation = operationName(r.Method, q.resource, q.rest)
	// Authenticate first: only an authenticated request spends the tenant's budget, so
	// an unauthenticated flood never makes the real IdP see a 429.
	rec := s.record(q, "")
	if res := s.authenticate(r.Context(), q.settings, r); !res.ok {
		rec.Reason = truncate(res.reason, 256)
		s.status.AuthFailure(q.tenant, rec)
		if ok, wait := s.authFailures.allow(tenantLabel + "\x00" + remoteAddr(r)); !ok {
			tooMany(rw, r, wait, "too many failed authentications from this client")
			return
		}
		rw.Header().Set("WWW-Authenticate", `Bearer realm="SCIM"`)
		writeError(rw, r, scimerr.New(http.StatusUnauthorized, "", "%s", res.detail))
		return
	}
	if ok, wait := s.limiters.allow(tenantLabel); !ok {
		tooMany(rw, r, wait, "too many requests for this SCIM tenant")
		return
	}
	s.status.Request(q.tenant, rec)
	if !q.settings.IsEnabled() {
		writeError(rw, r, scimerr.New(http.StatusForbidden, "",
			"SCIM provisioning is disabled for this tenant (ScimSettings %s has spec.enabled: false); nothing was changed", q.tenantName()))
		return
	}
	s.dispatch(q)
}

// tooMany answers 429 with a Retry-After of wait, in whole seconds.
func tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, what string) {
	secs := int(wait/time.Second) + 1
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, r, scimerr.New(http.StatusTooManyRequests, "", "%s; retry after %d seconds", what, secs))
}

func (s *Server) record(q *request, reason string) scimv1.RequestRecord {
	return scimv1.RequestRecord{
		Time:          metav1.NewTime(time.Now().UTC().Truncate(time.Second)),
		UserAgent:     truncate(q.r.UserAgent(), 256),
		Operation:     truncate(q.operation, 128),
		RemoteAddress: truncate(remoteAddr(q.r), 128),
		Reason:        reason,
	}
}

func truncate(s string, n int) string { return clip.Prefix(s, n) }

func remoteAddr(r *http.Request) string {
	if f := r.Header.Get("X-Forwarded-For"); f != "" {
		first, _, _ := strings.Cut(f, ",")
		return strings.TrimSpace(first)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 128 {
		ok := true
		for _, c := range id {
			if c < 0x21 || c > 0x7e {
				ok = false
				break
			}
		}
		if ok {
			return id
		}
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// methodLabel bounds the method in metric labels: clients choose it freely.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions:
		return m
	}
	return "OTHER"
}

func operationName(method, resource string, rest []string) string {
	op := methodLabel(method) + " /" + resource
	if len(rest) > 0 {
		op += "/{id}"
	}
	return op
}

// route finds the tenant whose base path prefixes the request path, followed by a known
// resource name. Base paths are looked up in the cache's SettingsBasePath index.
func (s *Server) route(q *request) error {
	segs := strings.Split(strings.Trim(q.r.URL.Path, "/"), "/")
	for i := len(segs) - 1; i >= 1 && i >= len(segs)-3; i-- {
		res, ok := resources[strings.ToLower(segs[i])]
		if !ok {
			continue
		}
		prefix := "/" + strings.Join(segs[:i], "/")
		settings, err := s.tenantByBasePath(q.r.Context(), prefix)
		if err != nil {
			return err
		}
		if settings == nil {
			continue
		}
		q.settings = settings
		q.tenant = types.NamespacedName{Namespace: settings.Namespace, Name: settings.Name}
		q.resource = res
		q.rest = segs[i+1:]
		q.baseURL = s.externalBase(q.r) + prefix
		return nil
	}
	return scimerr.New(http.StatusNotFound, "", "no SCIM tenant or resource at %q; the tenant's base path is shown in its ScimSettings status", truncate(q.r.URL.Path, 200))
}

func (s *Server) tenantByBasePath(ctx context.Context, prefix string) (*scimv1.ScimSettings, error) {
	// Every request routes through here, and requests only read the tenant: no copy.
	owner, err := tenant.OwnerOf(ctx, s.opts.Client, prefix)
	if err != nil {
		s.log.Error(err, "looking up a SCIM tenant by base path")
		return nil, scimerr.New(http.StatusServiceUnavailable, "", "the SCIM tenant cannot be looked up right now; retry")
	}
	return owner, nil
}

func (s *Server) externalBase(r *http.Request) string {
	if s.opts.ExternalURL != "" {
		return s.opts.ExternalURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstHeader(r, "X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	host := r.Host
	if h := firstHeader(r, "X-Forwarded-Host"); h != "" && validHost(h) {
		host = h
	}
	return scheme + "://" + host
}

func firstHeader(r *http.Request, name string) string {
	v, _, _ := strings.Cut(r.Header.Get(name), ",")
	return strings.ToLower(strings.TrimSpace(v))
}

func validHost(h string) bool {
	if len(h) > 255 {
		return false
	}
	for _, c := range h {
		if !(c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// dispatch runs the handler of an authenticated request.
func (s *Server) dispatch(q *request) {
	m := q.r.Method
	notAllowed := func(allow string) {
		q.w.Header().Set("Allow", allow)
		writeError(q.w, q.r, scimerr.New(http.StatusMethodNotAllowed, "", "%s is not supported on /%s", m, q.resource))
	}
	switch q.resource {
	case "Users":
		switch {
		case len(q.rest) == 0 && m == http.MethodGet:
			s.listUsers(q)
		case len(q.rest) == 0 && m == http.MethodPost:
			s.createUser(q)
		case len(q.rest) == 0:
			notAllowed("GET, POST")
		case len(q.rest) > 1:
			writeError(q.w, q.r, scimerr.New(http.StatusNotFound, "", "no such resource"))
		case m == http.MethodGet:
			s.getUser(q)
		case m == http.MethodPut:
			s.replaceUser(q)
		case m == http.MethodPatch:
			s.patchUser(q)
		case m == http.MethodDelete:
			s.deleteUser(q)
		default:
			notAllowed("GET, PUT, PATCH, DELETE")
		}
	case "Groups":
		s.groups(q)
	case "ServiceProviderConfig", "ResourceTypes", "Schemas":
		if m != http.MethodGet {
			notAllowed("GET")
			return
		}
		s.discovery(q)
	default: // Bulk, Me
		writeError(q.w, q.r, scimerr.New(http.StatusNotImplemented, "", "/%s is not supported by this SCIM server", q.resource))
	}
}

// recentWrites remembers users this replica just wrote, so that a read right after a
// write returns it even when the informer has not caught up (read-your-writes).
type recentWrites struct {
	mu sync.Mutex
	m  map[types.NamespacedName]recentEntry
}

type recentEntry struct {
	user    *scimv1.StackUser // nil: deleted
	uid     types.UID
	written time.Time
}

const recentTTL = 30 * time.Second

func (r *recentWrites) put(key types.NamespacedName, u *scimv1.StackUser) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[key] = recentEntry{user: u.DeepCopy(), uid: u.UID, written: time.Now()}
}

func (r *recentWrites) deleted(key types.NamespacedName, uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[key] = recentEntry{uid: uid, written: time.Now()}
}

// overlay returns the fresher of a cached object and this replica's last write of it;
// gone is true when this replica deleted it. A cache miss is not overlaid: callers fall
// back to a live read, which is authoritative.
func (r *recentWrites) overlay(key types.NamespacedName, cached *scimv1.StackUser) (u *scimv1.StackUser, gone bool) {
	r.mu.Lock()
	e, ok := r.m[key]
	r.mu.Unlock()
	if !ok || cached == nil || cached.UID != e.uid || time.Since(e.written) > recentTTL {
		return cached, false
	}
	if e.user == nil {
		return nil, true
	}
	if e.user.Generation > cached.Generation {
		return e.user.DeepCopy(), false
	}
	return cached, false
}

func (r *recentWrites) gc(ctx context.Context) {
	t := time.NewTicker(recentTTL)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.mu.Lock()
			for k, e := range r.m {
				if time.Since(e.written) > recentTTL {
					delete(r.m, k)
				}
			}
			r.mu.Unlock()
		}
	}
}
