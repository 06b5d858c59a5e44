package listener_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stackscim/stack-scim-operator/internal/listener"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m, func(e *testenv.Env) { env = e }))
}

// TestListener_servesOnEveryReplica: with leader election on, the replica that is not the
// leader still answers HTTP (the SCIM server), while leader-only work runs once.
func TestListener_servesOnEveryReplica(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	var leaderWork atomic.Int32
	var addrs []string
	for i := range 2 {
		mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
			Scheme:                        env.Scheme,
			Metrics:                       metricsserver.Options{BindAddress: "0"},
			LeaderElection:                true,
			LeaderElectionID:              "listener-test",
			LeaderElectionNamespace:       ns,
			LeaderElectionReleaseOnCancel: true,
		})
		g.Expect(err).NotTo(HaveOccurred())
		l := listener.New(listener.Options{Addr: "127.0.0.1:0"}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "replica %d", i)
		}), logr.Discard())
		g.Expect(mgr.Add(l)).To(Succeed())
		g.Expect(mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			leaderWork.Add(1)
			<-ctx.Done()
			return nil
		}))).To(Succeed())
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go func() { _ = mgr.Start(ctx) }()
		addrCtx, done := context.WithTimeout(ctx, 30*time.Second)
		addr, err := l.Addr(addrCtx)
		done()
		g.Expect(err).NotTo(HaveOccurred())
		addrs = append(addrs, addr.String())
	}
	for i, addr := range addrs {
		g.Eventually(func() string {
			resp, err := http.Get("http://" + addr + "/")
			if err != nil {
				return err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}, 30*time.Second, 100*time.Millisecond).Should(Equal(fmt.Sprintf("replica %d", i)))
	}
	g.Eventually(leaderWork.Load, 30*time.Second, 100*time.Millisecond).Should(Equal(int32(1)))
	g.Consistently(leaderWork.Load, 2*time.Second, 200*time.Millisecond).Should(Equal(int32(1)), "leader-only work runs on one replica")
}

// TestListener_slowHeadersAreCut: a client that never finishes its headers is
// disconnected instead of holding a connection forever.
func TestListener_slowHeadersAreCut(t *testing.T) {
	g := NewWithT(t)
	l := listener.New(listener.Options{Addr: "127.0.0.1:0", ReadHeaderTimeout: 200 * time.Millisecond},
		http.NotFoundHandler(), logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- l.Start(ctx) }()
	addr, err := l.Addr(ctx)
	g.Expect(err).NotTo(HaveOccurred())

	conn, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close()
	_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")) // never ends the headers
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, _ := conn.Read(buf)
	g.Expect(string(buf[:n])).NotTo(ContainSubstring("200 OK"))
	_, err = conn.Read(buf)
	g.Expect(err).To(HaveOccurred(), "the server closed the connection")

	cancel()
	g.Eventually(errc, 20*time.Second).Should(Receive(BeNil()), "graceful shutdown")
}

// TestListener_shutdownDrainsInFlightRequests: on shutdown the listener stops being ready
// at once, a request already being served runs to its end with a context that shutdown
// did not cancel, its client gets the full answer, and Start then returns cleanly.
func TestListener_shutdownDrainsInFlightRequests(t *testing.T) {
	g := NewWithT(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var ctxErrAtEnd atomic.Value
	l := listener.New(listener.Options{Addr: "127.0.0.1:0"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		ctxErrAtEnd.Store(fmt.Sprint(r.Context().Err()))
		_, _ = io.WriteString(w, "written after shutdown began")
	}), logr.Discard())
	g.Expect(l.DrainTimeout()).To(BeNumerically(">", 55*time.Second), "the drain outlasts the write budget")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- l.Start(ctx) }()
	addr, err := l.Addr(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(l.Serving()).To(BeTrue())

	type answer struct {
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + addr.String() + "/slow")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{string(b), err}
	}()
	<-entered
	cancel() // SIGTERM
	g.Eventually(l.Serving).Should(BeFalse(), "readiness turns false as soon as shutdown begins")
	g.Consistently(stopped, 200*time.Millisecond).ShouldNot(Receive(), "shutdown waits for the in-flight request")
	close(release)

	var a answer
	g.Eventually(answered, 10*time.Second).Should(Receive(&a))
	g.Expect(a.err).NotTo(HaveOccurred())
	g.Expect(a.body).To(Equal("written after shutdown began"))
	g.Expect(ctxErrAtEnd.Load()).To(Equal("<nil>"), "the request's context was not cancelled by shutdown")
	g.Eventually(stopped, 10*time.Second).Should(Receive(BeNil()))
	_, err = net.DialTimeout("tcp", addr.String(), time.Second)
	g.Expect(err).To(HaveOccurred(), "no new connections after the drain")
}
