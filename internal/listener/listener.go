// Package listener runs an HTTP handler as a controller-runtime Runnable on every replica
// (not only the leader), with the timeouts and limits a server facing the internet needs.
package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// Options configure a Listener.
type Options struct {
	// Addr is the address to listen on, e.g. ":8090". ":0" picks a free port.
	Addr string
	// CertFile and KeyFile, when both set, serve TLS and reload the pair when it changes.
	CertFile, KeyFile string
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout bound slow clients.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes caps request headers.
	MaxHeaderBytes int
	// DrainTimeout bounds how long a shutdown waits for in-flight requests; it defaults to
	// WriteTimeout plus 5 s, so every request that was allowed to run is allowed to end.
	DrainTimeout time.Duration
}

// Listener serves one handler until its context ends.
type Listener struct {
	opts    Options
	handler http.Handler
	log     logr.Logger
	ready   chan struct{}
	addr    net.Addr
	// draining is set when shutdown begins; inflight counts requests being served.
	draining atomic.Bool
	inflight atomic.Int64
}

// New returns a Listener for handler; defaults suit a SCIM server behind an Ingress.
func New(opts Options, handler http.Handler, log logr.Logger) *Listener {
	if opts.ReadHeaderTimeout == 0 {
		opts.ReadHeaderTimeout = 10 * time.Second
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = 30 * time.Second
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = 55 * time.Second // Okta and Entra give up after 60 s
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 120 * time.Second
	}
	if opts.MaxHeaderBytes == 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = opts.WriteTimeout + 5*time.Second
	}
	return &Listener{opts: opts, handler: handler, log: log, ready: make(chan struct{})}
}

// NeedLeaderElection is false: every replica serves requests.
func (l *Listener) NeedLeaderElection() bool { return false }

// Addr blocks until the listener is bound and returns its address.
func (l *Listener) Addr(ctx context.Context) (net.Addr, error) {
	select {
	case <-l.ready:
		return l.addr, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Serving reports whether the listener is bound and not shutting down: what readiness
// needs from it.
func (l *Listener) Serving() bool {
	select {
	case <-l.ready:
		return !l.draining.Load()
	default:
		return false
	}
}

// Draining reports whether shutdown has begun.
func (l *Listener) Draining() bool { return l.draining.Load() }

// DrainTimeout is how long a shutdown waits for in-flight requests.
func (l *Listener) DrainTimeout() time.Duration { return l.opts.DrainTimeout }

// count tracks in-flight requests for the shutdown log.
func (l *Listener) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.inflight.Add(1)
		defer l.inflight.Add(-1)
		next.ServeHTTP(w, r)
	})
}

// Start serves until ctx ends, then shuts down gracefully: it stops accepting
// connections, closes idle ones, and waits up to DrainTimeout for in-flight requests.
// Requests are not cancelled by the shutdown: their context carries ctx's values but not
// its cancellation, so a SCIM write that started finishes and is answered.
func (l *Listener) Start(ctx context.Context) error {
	srv := &http.Server{
		Handler:           l.count(l.handler),
		ReadHeaderTimeout: l.opts.ReadHeaderTimeout,
		ReadTimeout:       l.opts.ReadTimeout,
		WriteTimeout:      l.opts.WriteTimeout,
		IdleTimeout:       l.opts.IdleTimeout,
		MaxHeaderBytes:    l.opts.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := net.Listen("tcp", l.opts.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", l.opts.Addr, err)
	}
	if l.opts.CertFile != "" && l.opts.KeyFile != "" {
		w, err := certwatcher.New(l.opts.CertFile, l.opts.KeyFile)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		go func() {
			if err := w.Start(ctx); err != nil {
				l.log.Error(err, "certificate watcher stopped")
			}
		}()
		ln = tls.NewListener(ln, &tls.Config{GetCertificate: w.GetCertificate, MinVersion: tls.VersionTLS12})
	}
	l.addr = ln.Addr()
	close(l.ready)
	l.log.Info("serving", "address", l.addr.String(), "tls", l.opts.CertFile != "")

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		// Readiness turns false first (see Serving), so the endpoints drop this replica;
		// the chart's preStop delay has already given them time to.
		l.draining.Store(true)
		l.log.Info("shutting down: draining in-flight requests", "inflight", l.inflight.Load(), "timeout", l.opts.DrainTimeout.String())
		shutdown, cancel := context.WithTimeout(context.Background(), l.opts.DrainTimeout)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			return fmt.Errorf("draining: %d requests still in flight: %w", l.inflight.Load(), err)
		}
		l.log.Info("drained")
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
