package faults_test

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/scim/resource"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// patchOutcome is one concurrent PATCH and its answer.
type patchOutcome struct {
	requestID string
	attr      string // what it changed
	value     string
	resp      response
}

// TestFaults_concurrentPatchesToOneUserLoseNothing sends rounds of 20 PATCHes at once to
// one user, half adding a distinct phone number, half replacing a distinct attribute,
// while the reconciler writes the same object's status. The API server answers most of
// the server's writes with conflicts; none may be lost: every PATCH answers 200 or a SCIM
// error (never 5xx), every change whose PATCH succeeded is there exactly once, those
// that failed left nothing, and the audit history has exactly one IdP entry per
// successful PATCH, naming its request id.
func TestFaults_concurrentPatchesToOneUserLoseNothing(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t, tenantOptions{
		sim: sitesim.Config{CreateUsers: true},
		settings: func(s *scimv1.ScimSettings) {
			s.Spec.HistoryLimit = 200
		},
	})
	id := tn.create(g, oktaUser("contended@example.com"))

	// The attributes a replace may target: path, and where the value lands in the SCIM
	// document (top level, name.*, or the enterprise extension).
	replaces := []struct{ path, in, key string }{
		{"title", "", "title"},
		{"nickName", "", "nickName"},
		{"displayName", "", "displayName"},
		{resource.SchemaEnterprise + ":department", resource.SchemaEnterprise, "department"},
		{"locale", "", "locale"},
		{"preferredLanguage", "", "preferredLanguage"},
		{"timezone", "", "timezone"},
		{"profileUrl", "", "profileUrl"},
		{"name.givenName", "name", "givenName"},
		{"name.familyName", "name", "familyName"},
	}

	var all []patchOutcome
	const rounds = 3
	for round := range rounds {
		outcomes := make([]patchOutcome, 20)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for i := range outcomes {
			o := &outcomes[i]
			o.requestID = fmt.Sprintf("conflict-r%d-p%02d-%s", round, i, randomHex(4))
			var op map[string]any
			if i%2 == 0 {
				o.attr = "phoneNumbers"
				o.value = fmt.Sprintf("+1 555 %d%02d", round, i)
				op = map[string]any{"op": "add", "path": "phoneNumbers", "value": []any{map[string]any{"value": o.value, "type": "work"}}}
			} else {
				rp := replaces[i/2]
				o.attr = rp.path
				o.value = fmt.Sprintf("%s round %d", rp.key, round)
				if rp.key == "profileUrl" {
					o.value = fmt.Sprintf("https://profiles.example.com/r%d", round)
				}
				if rp.key == "locale" || rp.key == "preferredLanguage" {
					o.value = []string{"fr-FR", "de-DE", "es-ES"}[round] // not the en-US of the POST: a no-op PATCH writes and audits nothing
				}
				if rp.key == "timezone" {
					o.value = []string{"Europe/Paris", "America/New_York", "Asia/Tokyo"}[round]
				}
				op = map[string]any{"op": "replace", "path": rp.path, "value": o.value}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				o.resp = tn.send(request{method: "PATCH", path: "/Users/" + id, body: patchBody(op), headers: []string{"X-Request-Id", o.requestID}})
			}()
		}
		close(gate)
		wg.Wait()
		all = append(all, outcomes...)

		// Every answer is a success or a SCIM error a client can act on; never a 5xx.
		ok := 0
		for _, o := range outcomes {
			switch {
			case o.resp.err != nil:
				t.Errorf("PATCH %s: %v", o.requestID, o.resp.err)
			case o.resp.status == http.StatusOK || o.resp.status == http.StatusNoContent:
				ok++
			case o.resp.status >= 400 && o.resp.status < 500:
				if p := scimErrorProblem(o.resp); p != "" {
					t.Errorf("PATCH %s answered %s: %s", o.requestID, o.resp, p)
				}
			default:
				t.Errorf("PATCH %s (%s) answered %s", o.requestID, o.attr, o.resp)
			}
		}
		t.Logf("round %d: %d of %d PATCHes succeeded", round, ok, len(outcomes))
		g.Expect(ok).To(BeNumerically(">", 0))

		// The last successful replace of each attribute in this round is what the user
		// shows now; since the replaces of one round target distinct attributes, each
		// successful one must be visible, each failed one must not.
		r := tn.send(request{method: "GET", path: "/Users/" + id})
		g.Expect(r.status).To(Equal(http.StatusOK), "%s", r)
		for _, o := range outcomes {
			if o.attr == "phoneNumbers" {
				continue
			}
			got := lookupAttr(r.doc, o.attr)
			if o.resp.status == http.StatusOK {
				g.Expect(got).To(Equal(o.value), "%s after its PATCH %s succeeded", o.attr, o.requestID)
			} else {
				g.Expect(got).NotTo(Equal(o.value), "%s after its PATCH %s failed", o.attr, o.requestID)
			}
		}

		// Phone numbers: each successful add exactly once, no other. Then clear them (the
		// CRD allows 20) with one more PATCH, which is audited like the others.
		var wantPhones, gotPhones []string
		for _, o := range outcomes {
			if o.attr == "phoneNumbers" && o.resp.status == http.StatusOK {
				wantPhones = append(wantPhones, o.value)
			}
		}
		phones, _ := r.doc["phoneNumbers"].([]any)
		for _, p := range phones {
			m, _ := p.(map[string]any)
			gotPhones = append(gotPhones, fmt.Sprint(m["value"]))
		}
		sort.Strings(wantPhones)
		sort.Strings(gotPhones)
		g.Expect(gotPhones).To(Equal(wantPhones), "phone numbers: one per successful add, each once")
		reset := patchOutcome{requestID: fmt.Sprintf("conflict-r%d-clear-%s", round, randomHex(4)), attr: "clear"}
		reset.resp = tn.send(request{method: "PATCH", path: "/Users/" + id, headers: []string{"X-Request-Id", reset.requestID},
			body: patchBody(map[string]any{"op": "remove", "path": "phoneNumbers"})})
		g.Expect(reset.resp.status).To(Equal(http.StatusOK), "%s", reset.resp)
		all = append(all, reset)
	}

	// One IdP "Patch" entry per successful PATCH, carrying its request id; none for the
	// failed ones. The audit entry is appended after the response is decided, so wait.
	var wantIDs []string
	for _, o := range all {
		if o.resp.status == http.StatusOK {
			wantIDs = append(wantIDs, o.requestID)
		}
	}
	sort.Strings(wantIDs)
	g.Eventually(func(g Gomega) {
		u := tn.stackUser(g, id)
		var got []string
		for _, e := range u.Status.History {
			if e.Actor.Kind == scimv1.ActorIdentityProvider && e.Action == "Patch" {
				got = append(got, e.Actor.RequestID)
			}
		}
		sort.Strings(got)
		g.Expect(got).To(Equal(wantIDs), "audit entries of the IdP's PATCHes")
	}).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}

// lookupAttr reads a SCIM attribute by PATCH path from a user document.
func lookupAttr(doc map[string]any, path string) any {
	switch {
	case path == "name.givenName" || path == "name.familyName":
		n, _ := doc["name"].(map[string]any)
		return n[path[len("name."):]]
	case len(path) > len(resource.SchemaEnterprise) && path[:len(resource.SchemaEnterprise)] == resource.SchemaEnterprise:
		e, _ := doc[resource.SchemaEnterprise].(map[string]any)
		return e[path[len(resource.SchemaEnterprise)+1:]]
	}
	return doc[path]
}
