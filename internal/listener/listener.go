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
}

// Listener serves one handler until its context ends.
type Listener struct {
	opts    Options
	handler http.Handler
	log     logr.Logger
	ready   chan struct{}
	addr    net.Addr
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

// Start serves until ctx ends, then shuts down gracefully.
func (l *Listener) Start(ctx context.Context) error {
	srv := &http.Server{
		Handler:           l.handler,
		ReadHeaderTimeout: l.opts.ReadHeaderTimeout,
		ReadTimeout:       l.opts.ReadTimeout,
		WriteTimeout:      l.opts.WriteTimeout,
		IdleTimeout:       l.opts.IdleTimeout,
		MaxHeaderBytes:    l.opts.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
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
		shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			return err
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
