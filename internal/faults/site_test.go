package faults_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/scim/resource"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// slowSite adds the timeouts the simulator cannot make on its own (its latency applies to
// every call alike): a fraction of calls stalls past the tenant's site timeout before the
// site sees them, and another fraction is processed by the site but its answer stalls
// until the caller gives up (a write that happened although the caller saw a timeout).
type slowSite struct {
	next                 http.Handler
	stallRate, lostRate  float64
	stall                time.Duration
	stalled, lostAnswers atomic.Int64
}

func (s *slowSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.next.ServeHTTP(w, r)
		return
	}
	switch p := rand.Float64(); {
	case p < s.stallRate:
		s.stalled.Add(1)
		t := time.NewTimer(s.stall)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return // the caller timed out; the site never saw the call
		case <-t.C:
		}
		s.next.ServeHTTP(w, r)
	case p < s.stallRate+s.lostRate:
		s.lostAnswers.Add(1)
		rec := httptest.NewRecorder()
		s.next.ServeHTTP(rec, r)
		t := time.NewTimer(s.stall)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return // processed, but the answer is lost
		case <-t.C:
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	default:
		s.next.ServeHTTP(w, r)
	}
}

// wantUser is what the site should end up with for one provisioned user.
type wantUser struct {
	userName, externalID, displayName, given, family, title, department string
	role                                                                string // site role
	active                                                              bool
}

// TestFaults_siteThrottlingAndErrorsAllConverge provisions 150 users over SCIM while
// about a third of the site's answers are faults (429 with Retry-After, 503, timeouts
// before and after the site acted), then changes some of them. Every user must end up on
// the site exactly once, with the right activation, role and profile, and every StackUser
// Synced.
func TestFaults_siteThrottlingAndErrorsAllConverge(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	slow := &slowSite{stallRate: 0.05, lostRate: 0.04, stall: 1500 * time.Millisecond}
	tn := newTenant(t, tenantOptions{
		sim: sitesim.Config{
			CreateUsers:             true,
			AllowModeratorPromotion: true,
			AllowAdminPromotion:     true,
			Latency:                 sitesim.Duration(3 * time.Millisecond),
			ThrottleRate:            0.12,
			RetryAfterSeconds:       1,
			ServerErrorRate:         0.12,
		},
		wrapSite: func(h http.Handler) http.Handler { slow.next = h; return slow },
		settings: func(s *scimv1.ScimSettings) {
			s.Spec.AllowModeratorPromotion = true
			s.Spec.AllowAdminPromotion = true
			s.Spec.Site.Timeout = &metav1.Duration{Duration: time.Second}
			s.Spec.HistoryLimit = 50
		},
	})

	const n = 150
	want := map[string]*wantUser{} // by userName, lower case
	bodies := make([]map[string]any, n)
	for i := range n {
		userName := fmt.Sprintf("Fault.User%03d@Example.com", i)
		b := oktaUser(userName)
		w := &wantUser{
			userName: userName, externalID: b["externalId"].(string), displayName: fmt.Sprintf("Fault User %d", i),
			given: fmt.Sprintf("Given%d", i), family: fmt.Sprintf("Family%d", i),
			title: fmt.Sprintf("Engineer %d", i%7), department: fmt.Sprintf("Dept %d", i%5),
			role: "Registered", active: true,
		}
		b["displayName"] = w.displayName
		b["name"] = map[string]any{"givenName": w.given, "familyName": w.family}
		b["title"] = w.title
		b[resource.SchemaEnterprise] = map[string]any{"department": w.department}
		// A mix of roles, in each of the places an IdP puts them; none means "not managed".
		switch i % 5 {
		case 1:
			b["userType"] = "Moderator"
			w.role = "Moderator"
		case 2:
			b[resource.SchemaStack] = map[string]any{resource.RoleAttribute: "Admin"}
			w.role = "Admin"
		case 3:
			b["stackUserType"] = "Registered"
		case 4:
			b[resource.SchemaStack] = map[string]any{resource.RoleAttribute: "moderator"}
			w.role = "Moderator"
		}
		if i%10 == 9 {
			b["active"] = false
			w.active = false
		}
		bodies[i] = b
		want[strings.ToLower(userName)] = w
	}

	start := time.Now()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for worker := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := worker; i < n; i += 8 {
				r := tn.send(request{method: "POST", path: "/Users", body: bodies[i]})
				if r.status != http.StatusCreated {
					errs <- fmt.Sprintf("POST %d: %s", i, r)
					continue
				}
				ids[i], _ = r.doc["id"].(string)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	g.Expect(t.Failed()).To(BeFalse())

	waitConverged := func(phase string) {
		t.Helper()
		g.Eventually(func(g Gomega) {
			users := tn.stackUsers(g)
			g.Expect(users).To(HaveLen(n))
			var pending []string
			for i := range users {
				if why := synced(&users[i]); why != "" {
					pending = append(pending, users[i].Spec.UserName+": "+why)
				}
			}
			g.Expect(pending).To(BeEmpty(), "%d users not converged", len(pending))
			checkSite(g, tn, users, want)
		}).WithTimeout(100*time.Second).WithPolling(500*time.Millisecond).Should(Succeed(), phase)
		t.Logf("%s: converged %s after the SCIM requests (site counters %v, stalled %d, answers lost %d)",
			phase, time.Since(start).Round(time.Millisecond), tn.sim.Requests(), slow.stalled.Load(), slow.lostAnswers.Load())
	}
	waitConverged("provisioning")

	// Second wave under the same faults: deactivate, reactivate, promote, demote, rename.
	start = time.Now()
	for i := 0; i < n; i += 3 {
		w := want[strings.ToLower(bodies[i]["userName"].(string))]
		var ops []map[string]any
		switch i % 4 {
		case 0:
			ops = append(ops, map[string]any{"op": "Replace", "path": "active", "value": fmt.Sprint(!w.active)})
			w.active = !w.active
		case 1:
			ops = append(ops, map[string]any{"op": "replace", "path": "userType", "value": "Admin"})
			w.role = "Admin"
		case 2:
			ops = append(ops, map[string]any{"op": "replace", "path": "userType", "value": "Registered"})
			w.role = "Registered"
		case 3:
			ops = append(ops, map[string]any{"op": "replace", "value": map[string]any{"title": "Renamed", "displayName": "Renamed " + w.displayName}})
			w.title, w.displayName = "Renamed", "Renamed "+w.displayName
		}
		r := tn.send(request{method: "PATCH", path: "/Users/" + ids[i], body: patchBody(ops...)})
		g.Expect(r.status).To(Equal(http.StatusOK), "%s", r)
	}
	waitConverged("changes")

	req := tn.sim.Requests()
	g.Expect(req[sitesim.CountThrottled]).To(BeNumerically(">", 10), "429s were injected: %v", req)
	g.Expect(req[sitesim.CountServerErrors]).To(BeNumerically(">", 10), "5xx were injected: %v", req)
	g.Expect(slow.stalled.Load()+slow.lostAnswers.Load()).To(BeNumerically(">", 10), "timeouts were injected")
	g.Expect(req[sitesim.CountUnauthorized]).To(BeZero())
}

// checkSite compares the simulator's users with what was provisioned: one site user per
// StackUser, linked by status.siteId, with the wanted activation, role and profile.
func checkSite(g Gomega, tn *tenant, users []scimv1.StackUser, want map[string]*wantUser) {
	siteUsers := tn.sim.Users()
	g.Expect(siteUsers).To(HaveLen(len(want)), "site users (duplicates or missing)")
	byName := map[string]sitesim.User{}
	for _, su := range siteUsers {
		key := strings.ToLower(su.UserName)
		_, dup := byName[key]
		g.Expect(dup).To(BeFalse(), "two site users named %s", su.UserName)
		byName[key] = su
	}
	linked := map[string]string{}
	for i := range users {
		u := &users[i]
		w := want[strings.ToLower(u.Spec.UserName)]
		g.Expect(w).NotTo(BeNil(), "unexpected StackUser %s", u.Spec.UserName)
		g.Expect(linked).NotTo(HaveKey(u.Status.SiteID), "site user linked twice")
		linked[u.Status.SiteID] = u.Name
		su, ok := byName[strings.ToLower(w.userName)]
		g.Expect(ok).To(BeTrue(), "no site user for %s", w.userName)
		g.Expect(su.ID).To(Equal(u.Status.SiteID), "%s is linked to the wrong site user", w.userName)
		got := wantUser{userName: su.UserName, externalID: su.ExternalID, displayName: su.DisplayName,
			given: su.GivenName, family: su.FamilyName, title: su.Title, department: su.Department,
			role: su.Role, active: su.Active}
		g.Expect(got).To(Equal(*w), "site user %s", su.ID)
		g.Expect(strings.EqualFold(su.Email, w.userName)).To(BeTrue(), "email of %s: %q", w.userName, su.Email)
	}
}
