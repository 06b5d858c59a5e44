package e2e_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// service stands in for a Kubernetes Service in front of the manager's replicas: it
// sends each request to a replica whose readiness probe last answered 200 and that is not
// terminating (an EndpointSlice drops a terminating pod at once, before its preStop
// delay ends and SIGTERM arrives).
type service struct {
	mu          sync.Mutex
	replicas    []*operator
	ready       map[*operator]bool
	terminating map[*operator]bool
	next        int
}

func newService(t *testing.T, replicas ...*operator) (*service, string) {
	s := &service{replicas: replicas, ready: map[*operator]bool{}, terminating: map[*operator]bool{}}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go s.probe(stop)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			target := s.pick()
			r.SetURL(&url.URL{Scheme: "http", Host: target})
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s, ln.Addr().String()
}

// probe polls every replica's /readyz, as the kubelet does (faster, to keep tests short).
func (s *service) probe(stop <-chan struct{}) {
	hc := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, r := range s.replicas {
			ok := false
			if resp, err := hc.Get("http://" + r.probeAddr + "/readyz"); err == nil {
				ok = resp.StatusCode == http.StatusOK
				resp.Body.Close()
			}
			s.mu.Lock()
			s.ready[r] = ok
			s.mu.Unlock()
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

func (s *service) pick() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range s.replicas {
		s.next = (s.next + 1) % len(s.replicas)
		if r := s.replicas[s.next]; s.ready[r] && !s.terminating[r] {
			return r.scimAddr
		}
	}
	return "127.0.0.1:1" // no endpoint: the request fails, and the test counts it
}

func (s *service) endpoints() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.replicas {
		if s.ready[r] && !s.terminating[r] {
			n++
		}
	}
	return n
}

// terminate starts a pod deletion: the replica leaves the endpoints.
func (s *service) terminate(r *operator) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.terminating[r] = true
}

// TestRollout_sigtermDropsNoSCIMRequest: two replicas serve Okta traffic through a
// Service; one is deleted as in a rolling update (it leaves the endpoints, then gets
// SIGTERM) while clients still on stale connections keep sending it requests. No request
// ends in a 5xx or a broken connection an IdP would not retry; the stopped replica exits
// cleanly within its drain; the other takes over leadership and brings every user to the
// site.
func TestRollout_sigtermDropsNoSCIMRequest(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	site := startSite(t)
	st := tenant(t, ns, site, nil)
	a, b := startOperator(t, ns), startOperator(t, ns)
	svc, addr := newService(t, a, b)
	g.Eventually(svc.endpoints, 90*time.Second, 50*time.Millisecond).Should(Equal(2), "both replicas ready")

	var (
		mu       sync.Mutex
		failures []string
		created  []string
		sent     atomic.Int64
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	// send plays one Okta create-then-read through client c and records the outcome.
	send := func(c *scimClient, name string, onlyRefusedIsOK bool) (refused bool) {
		code, body := c.do(http.MethodPost, "/Users", map[string]any{
			"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName": name, "externalId": "okta-" + name, "active": true,
			"name": map[string]any{"givenName": "Roll", "familyName": "Out"},
		})
		sent.Add(1)
		switch {
		case code == 0:
			if msg, _ := body["error"].(string); onlyRefusedIsOK && isRefused(msg) {
				return true
			}
			fail("POST %s: connection failed: %v", name, body["error"])
		case code >= 500:
			fail("POST %s: %d %v", name, code, body)
		case code == http.StatusCreated:
			mu.Lock()
			created = append(created, name)
			mu.Unlock()
			id, _ := body["id"].(string)
			code, body := c.do(http.MethodGet, "/Users/"+id, nil)
			if msg, _ := body["error"].(string); code == 0 && isConnectionLost(msg) {
				// The replica closed its idle keep-alive connection (shutdown) just as the
				// read went out on it: an IdP retries an idempotent read on a new connection.
				if onlyRefusedIsOK {
					return true // a stale client: the replica is gone
				}
				code, body = c.do(http.MethodGet, "/Users/"+id, nil)
			}
			if msg, _ := body["error"].(string); code == 0 && onlyRefusedIsOK && isRefused(msg) {
				return true // the replica stopped listening after answering the POST
			}
			if code != http.StatusOK {
				fail("GET %s: %d %v", id, code, body)
			}
		default:
			fail("POST %s: %d %v", name, code, body)
		}
		return false
	}

	viaService := &scimClient{base: "http://" + addr + st.EffectiveBasePath(), token: "idp-token-e2e"}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				send(viaService, fmt.Sprintf("svc-%d-%d@example.com", w, i), false)
			}
		}()
	}
	g.Eventually(sent.Load, 30*time.Second, 20*time.Millisecond).Should(BeNumerically(">=", 40))

	// Delete replica a: out of the endpoints, then SIGTERM, while two clients that still
	// have its address (an Ingress controller with stale endpoints) keep opening
	// connections to it until it refuses them. Requests it accepted must be answered.
	svc.terminate(a)
	stale := &scimClient{base: "http://" + a.scimAddr + st.EffectiveBasePath(), token: "idp-token-e2e",
		http: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	// They start no request after SIGTERM: in a cluster the preStop delay has let every
	// client see the endpoint go before it. Requests they have in flight then must end well.
	var terminated atomic.Bool
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !terminated.Load(); i++ {
				if send(stale, fmt.Sprintf("stale-%d-%d@example.com", w, i), true) {
					return
				}
			}
		}()
	}
	g.Eventually(sent.Load, 30*time.Second, 5*time.Millisecond).Should(BeNumerically(">=", sent.Load()+4))
	terminated.Store(true)
	g.Expect(a.cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
	exited := make(chan error, 1)
	go func() { exited <- a.cmd.Wait() }()
	var exitErr error
	g.Eventually(exited, 90*time.Second).Should(Receive(&exitErr), "the replica exits within its drain")
	g.Expect(exitErr).NotTo(HaveOccurred(), "a clean exit after SIGTERM")

	// Replica b carries on and, as the new leader, reconciles every user.
	before := sent.Load()
	g.Eventually(sent.Load, 30*time.Second, 20*time.Millisecond).Should(BeNumerically(">=", before+40))
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	g.Expect(failures).To(BeEmpty(), "requests an IdP would see fail")
	t.Logf("%d requests sent, %d users created", sent.Load(), len(created))
	g.Eventually(func() []string {
		var missing []string
		for _, name := range created {
			if u := site.user(name); u == nil || !u.Active {
				missing = append(missing, name)
			}
		}
		return missing
	}, 2*time.Minute, 250*time.Millisecond).Should(BeEmpty(), "every user reaches the site after the hand-over")
}

// isRefused reports a connection refused before the request was sent (an IdP retries
// it), from the error text scimClient keeps.
func isRefused(msg string) bool { return strings.Contains(msg, "connection refused") }

// isConnectionLost says a request found its connection closed by the server: refused,
// reset, or EOF before any answer.
func isConnectionLost(msg string) bool {
	return isRefused(msg) || strings.Contains(msg, "connection reset by peer") || strings.HasSuffix(msg, ": EOF")
}
