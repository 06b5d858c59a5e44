package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// loadStats counts the answers of one load phase.
type loadStats struct {
	mu       sync.Mutex
	byStatus map[string]map[int]int // phase → status → count
	failures []string
}

func (s *loadStats) add(phase string, op string, r response, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byStatus[phase] == nil {
		s.byStatus[phase] = map[int]int{}
	}
	s.byStatus[phase][r.status]++
	if !ok && len(s.failures) < 20 {
		s.failures = append(s.failures, fmt.Sprintf("%s %s: %s", phase, op, r))
	}
}

// TestFaults_tokenRotationUnderLoadRefusesNoValidToken rotates the IdP bearer token
// while 8 clients send lists, creates and PATCHes without pause:
//
//  1. all clients use the old token (under key);
//  2. the new token is put under nextKey; a probe confirms the server accepts it;
//  3. clients switch to the new token (no request with the old one is in flight after
//     the switch);
//  4. the new token moves to key and nextKey is emptied, in one Secret write.
//
// Every load request carries a token valid at that moment, so none may answer 401 (or
// anything but success). Probes check the other side: the new token is refused before
// step 2, the old one is refused after step 4, a wrong token is refused throughout.
func TestFaults_tokenRotationUnderLoadRefusesNoValidToken(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t, tenantOptions{
		sim: sitesim.Config{CreateUsers: true},
		settings: func(s *scimv1.ScimSettings) {
			s.Spec.BearerTokenSecretRef.NextKey = "next"
		},
	})
	ctx := context.Background()
	oldToken, newToken := tn.token, "idp-new-"+randomHex(16)
	secretKey := types.NamespacedName{Namespace: tn.ns, Name: idpSecret}
	setSecret := func(data map[string]string) {
		t.Helper()
		g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var s corev1.Secret
			if err := tn.w.client.Get(ctx, secretKey, &s); err != nil {
				return err
			}
			s.Data = map[string][]byte{}
			for k, v := range data {
				s.Data[k] = []byte(v)
			}
			return tn.w.client.Update(ctx, &s)
		})).To(Succeed())
	}
	probe := func(token string) response {
		return tn.send(request{method: "GET", path: "/Users?count=1", token: token})
	}
	expect401 := func(r response, why string) {
		t.Helper()
		g.Expect(r.status).To(Equal(http.StatusUnauthorized), "%s: %s", why, r)
		g.Expect(scimErrorProblem(r)).To(BeEmpty(), "%s: %s", why, r)
	}

	// Step 0: only the old token is valid.
	expect401(probe(newToken), "the new token before it is configured")

	// The clients. Each request holds inUse for reading; switching tokens takes it for
	// writing, so no request with the old token is in flight once the switch returns.
	var (
		inUse  sync.RWMutex
		token  atomic.Value
		phase  atomic.Value
		stop   atomic.Bool
		stats  = &loadStats{byStatus: map[string]map[int]int{}}
		wg     sync.WaitGroup
		counts [8]atomic.Int64
	)
	token.Store(oldToken)
	phase.Store("1-old")
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []string // ids this client created
			for i := 0; !stop.Load(); i++ {
				inUse.RLock()
				tok, ph := token.Load().(string), phase.Load().(string)
				var (
					r    response
					op   string
					want int
				)
				switch {
				case i%12 == 0 && len(mine) < 6:
					op, want = "POST", http.StatusCreated
					r = tn.send(request{method: "POST", path: "/Users", token: tok, body: oktaUser(fmt.Sprintf("rot-%d-%d@example.com", c, i))})
					if r.status == http.StatusCreated {
						mine = append(mine, fmt.Sprint(r.doc["id"]))
					}
				case i%3 == 1 && len(mine) > 0:
					op, want = "PATCH", http.StatusOK
					r = tn.send(request{method: "PATCH", path: "/Users/" + mine[i%len(mine)], token: tok,
						body: patchBody(map[string]any{"op": "replace", "path": "title", "value": fmt.Sprintf("t%d", i)})})
				default:
					op, want = "GET", http.StatusOK
					r = tn.send(request{method: "GET", token: tok,
						path: "/Users?filter=" + url.QueryEscape(fmt.Sprintf(`userName eq "rot-%d-%d@example.com"`, c, i/12*12))})
				}
				inUse.RUnlock()
				counts[c].Add(1)
				stats.add(ph, op, r, r.err == nil && r.status == want)
			}
		}()
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	// waitLoad lets every client send a few more requests in the current phase.
	waitLoad := func() {
		t.Helper()
		var base [8]int64
		for i := range counts {
			base[i] = counts[i].Load()
		}
		g.Eventually(func() bool {
			for i := range counts {
				if counts[i].Load() < base[i]+15 {
					return false
				}
			}
			return true
		}).WithTimeout(30 * time.Second).WithPolling(20 * time.Millisecond).Should(BeTrue())
	}
	wrong := "idp-wrong-" + randomHex(16)

	waitLoad()
	expect401(probe(wrong), "a wrong token")

	// Step 2: the new token goes under nextKey; wait until the server accepts it.
	setSecret(map[string]string{"token": oldToken, "next": newToken})
	g.Eventually(func() int { return probe(newToken).status }).
		WithTimeout(20 * time.Second).WithPolling(20 * time.Millisecond).Should(Equal(http.StatusOK))
	waitLoad() // still the old token: it stays valid while both are configured

	// Step 3: the clients switch.
	inUse.Lock()
	token.Store(newToken)
	phase.Store("2-new-as-next")
	inUse.Unlock()
	waitLoad()
	expect401(probe(wrong), "a wrong token")

	// Step 4: the new token becomes the only one, in one write.
	inUse.Lock()
	phase.Store("3-new-as-key")
	inUse.Unlock()
	setSecret(map[string]string{"token": newToken})
	g.Eventually(func() int { return probe(oldToken).status }).
		WithTimeout(20 * time.Second).WithPolling(20 * time.Millisecond).Should(Equal(http.StatusUnauthorized))
	expect401(probe(oldToken), "the old token after it was removed")
	waitLoad()
	expect401(probe(wrong), "a wrong token")

	stop.Store(true)
	wg.Wait()
	stats.mu.Lock()
	defer stats.mu.Unlock()
	t.Logf("answers by phase and status: %v", stats.byStatus)
	g.Expect(stats.failures).To(BeEmpty(), "requests with a then-valid token that did not succeed")
	for _, ph := range []string{"1-old", "2-new-as-next", "3-new-as-key"} {
		total := 0
		for _, n := range stats.byStatus[ph] {
			total += n
		}
		g.Expect(total).To(BeNumerically(">=", 8*15), "requests in phase %s", ph)
	}

	// The switch-over is visible to admins: the probes' failures were recorded.
	g.Eventually(func(g Gomega) {
		var s scimv1.ScimSettings
		g.Expect(tn.w.client.Get(ctx, types.NamespacedName{Namespace: tn.ns, Name: tn.name}, &s)).To(Succeed())
		g.Expect(s.Status.LastAuthFailure).NotTo(BeNil())
		g.Expect(s.Status.LastAuthFailure.Reason).To(ContainSubstring("does not match"))
	}).WithTimeout(15 * time.Second).Should(Succeed())
}
