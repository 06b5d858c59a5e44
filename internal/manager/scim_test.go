package manager

import (
	"context"
	"net/http"
	"testing"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"

	"github.com/stackscim/stack-scim-operator/internal/listener"
	"github.com/stackscim/stack-scim-operator/internal/scim/server"
)

// TestSCIMReadiness_followsWhatTheServerNeeds: /readyz fails until the SCIM server has
// synced its caches and loaded its tenants and the listener is bound, and fails again as
// soon as shutdown begins, so Services stop sending requests before the drain.
func TestSCIMReadiness_followsWhatTheServerNeeds(t *testing.T) {
	g := NewWithT(t)
	srv := server.New(server.Options{Log: logr.Discard()})
	l := listener.New(listener.Options{Addr: "127.0.0.1:0"}, srv, logr.Discard())
	check := scimReadiness(srv, l)
	req, _ := http.NewRequest(http.MethodGet, "/readyz", nil)

	g.Expect(check(req)).To(MatchError(ContainSubstring("caches not synced")))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Start(ctx) }() // no cache to wait for: ready once started
	g.Eventually(srv.Ready).Should(BeTrue())
	g.Expect(check(req)).To(MatchError(ContainSubstring("listener not bound")))

	lctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Start(lctx) }()
	g.Eventually(func() error { return check(req) }).Should(Succeed())
	stop() // SIGTERM
	g.Eventually(func() error { return check(req) }).Should(MatchError(ContainSubstring("shutting down")))
	g.Eventually(done).Should(Receive(BeNil()))
}
