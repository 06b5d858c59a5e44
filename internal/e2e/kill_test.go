package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// TestE2E_managerKilledMidProvisioning: the manager is SIGKILLed in the middle of a
// 1,000-user provisioning run and restarted. Every user must reach the site exactly once,
// active, and every StackUser keeps the history of its creation.
func TestE2E_managerKilledMidProvisioning(t *testing.T) {
	if testing.Short() {
		t.Skip("provisions 1,000 users")
	}
	const users = 1000
	g := NewWithT(t)
	ns := env.Namespace(t)
	site := startSite(t)
	st := tenant(t, ns, site, nil)
	op := startOperator(t, ns)
	okta := newSCIMClient(op, st)
	g.Eventually(func() int { code, _ := okta.do(http.MethodGet, "/Users?count=1", nil); return code },
		60*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))

	// Okta-like workers: a POST that fails on the wire is retried; a 409 on retry means
	// the first attempt was stored, which Okta resolves by looking the user up.
	var created atomic.Int64
	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, users)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				name := fmt.Sprintf("user%04d@example.com", i)
				deadline := time.Now().Add(2 * time.Minute)
				for {
					code, body := okta.do(http.MethodPost, "/Users", map[string]any{
						"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
						"userName": name, "externalId": fmt.Sprintf("okta-%d", i), "active": true,
						"name":   map[string]any{"givenName": "User", "familyName": fmt.Sprint(i)},
						"emails": []any{map[string]any{"value": name, "primary": true, "type": "work"}},
					})
					if code == http.StatusCreated || code == http.StatusConflict {
						created.Add(1)
						break
					}
					if time.Now().After(deadline) {
						errs <- fmt.Errorf("POST %s: %d %v", name, code, body)
						break
					}
					time.Sleep(100 * time.Millisecond) // the operator is down: retry like an IdP
				}
			}
		}()
	}
	go func() {
		for i := range users {
			work <- i
		}
		close(work)
	}()

	// Kill the manager once a third of the users are in, while the reconciler is busy too.
	g.Eventually(created.Load, 2*time.Minute, 20*time.Millisecond).Should(BeNumerically(">=", users/3))
	op.kill()
	op2 := startOperatorAt(t, ns, op.scimAddr)
	_ = op2
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	g.Eventually(func() (int, error) {
		stt, err := site.state()
		if err != nil {
			return 0, err
		}
		active := 0
		for _, u := range stt.Users {
			if u.Active {
				active++
			}
		}
		return active, nil
	}, 5*time.Minute, time.Second).Should(Equal(users))

	stt, err := site.state()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(stt.Users).To(HaveLen(users), "no duplicate site users")
	seen := map[string]bool{}
	for _, u := range stt.Users {
		g.Expect(seen[u.UserName]).To(BeFalse(), "duplicate site user %s", u.UserName)
		seen[u.UserName] = true
	}

	// The site converged; the StackUsers' status follows within moments.
	g.Eventually(func(g Gomega) {
		list := &scimv1.StackUserList{}
		g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(users))
		for _, u := range list.Items {
			g.Expect(u.Status.SiteID).NotTo(BeEmpty(), "%s is linked", u.Spec.UserName)
			var fromIdP, onSite bool
			for _, e := range u.Status.History {
				fromIdP = fromIdP || (e.Actor.Kind == scimv1.ActorIdentityProvider && e.Action == "Create" &&
					(e.Message == "" || strings.HasPrefix(e.Message, "restored")))
				// Created on the site, or (killed between the site's answer and the status
				// write) linked to the user created before the kill.
				onSite = onSite || (e.Result == scimv1.ResultApplied && (strings.Contains(e.Message, u.Status.SiteID) ||
					slices.ContainsFunc(e.Changes, func(c scimv1.FieldChange) bool { return c.Field == "siteId" && c.New == u.Status.SiteID })))
			}
			g.Expect(fromIdP).To(BeTrue(), "%s: the IdP's create is on record: %+v", u.Spec.UserName, u.Status.History)
			g.Expect(onSite).To(BeTrue(), "%s: the site change is on record: %+v", u.Spec.UserName, u.Status.History)
		}
	}, time.Minute, time.Second).Should(Succeed())
}
