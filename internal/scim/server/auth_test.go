package server_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)

	resp, body := tn.do("GET", "/Users", nil, "Authorization", "")
	expectError(g, resp, body, http.StatusUnauthorized, "")
	g.Expect(body["status"]).To(Equal("401"))
	resp, body = tn.do("GET", "/Users", nil, "Authorization", "Bearer wrong")
	expectError(g, resp, body, http.StatusUnauthorized, "")
	resp, body = tn.do("GET", "/Users", nil, "Authorization", "Bearer "+tn.token+"x")
	expectError(g, resp, body, http.StatusUnauthorized, "")
	resp, body = tn.do("POST", "/Users", oktaUser("nope@example.com"), "Authorization", "Basic abc")
	expectError(g, resp, body, http.StatusUnauthorized, "")

	// Both header forms are accepted, the prefix in any case.
	for _, h := range []string{"Bearer " + tn.token, tn.token, "bearer " + tn.token, "BEARER  " + tn.token} {
		resp, body = tn.do("GET", "/Users", nil, "Authorization", h)
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%q: %v", h, body)
	}

	// The failure shows in the tenant's status, without the token.
	g.Eventually(func() *scimv1.RequestRecord {
		var s scimv1.ScimSettings
		g.Expect(env.Client.Get(context.Background(), keyOf(tn.ns, "acme"), &s)).To(Succeed())
		return s.Status.LastAuthFailure
	}, 15*time.Second).ShouldNot(BeNil())
	var s scimv1.ScimSettings
	g.Expect(env.Client.Get(context.Background(), keyOf(tn.ns, "acme"), &s)).To(Succeed())
	g.Expect(s.Status.LastAuthFailure.UserAgent).To(Equal("Okta SCIM Client 1.0.0"))
	g.Expect(s.Status.LastAuthFailure.Reason).NotTo(ContainSubstring(tn.token))
	g.Eventually(func() *scimv1.RequestRecord {
		g.Expect(env.Client.Get(context.Background(), keyOf(tn.ns, "acme"), &s)).To(Succeed())
		return s.Status.LastRequest
	}, 15*time.Second).Should(HaveField("Operation", HavePrefix("GET /")))

	// Rotation: a token under nextKey works as soon as the Secret and settings say so.
	next := randomToken()
	var secret corev1.Secret
	g.Expect(env.Client.Get(context.Background(), keyOf(tn.ns, "scim-token"), &secret)).To(Succeed())
	secret.Data["next"] = []byte(next)
	g.Expect(env.Client.Update(context.Background(), &secret)).To(Succeed())
	patchSettings(g, tn.ns, func(s *scimv1.ScimSettings) { s.Spec.BearerTokenSecretRef.NextKey = "next" })
	g.Eventually(func() int {
		resp, _ := tn.do("GET", "/Users", nil, "Authorization", "Bearer "+next)
		return resp.StatusCode
	}).Should(Equal(http.StatusOK))
	resp, _ = tn.do("GET", "/Users", nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK)) // the current token still works
	// Complete the rotation: the old token stops working without a restart.
	g.Expect(env.Client.Get(context.Background(), keyOf(tn.ns, "scim-token"), &secret)).To(Succeed())
	secret.Data["token"] = []byte(next)
	g.Expect(env.Client.Update(context.Background(), &secret)).To(Succeed())
	g.Eventually(func() int {
		resp, _ := tn.do("GET", "/Users", nil)
		return resp.StatusCode
	}).Should(Equal(http.StatusUnauthorized))

	// A missing Secret or an empty token is a 401 that tells an unauthenticated caller
	// only that its token is not valid; status.lastAuthFailure tells the admin why.
	g.Expect(env.Client.Get(context.Background(), keyOf(tn.ns, "scim-token"), &secret)).To(Succeed())
	secret.Data = map[string][]byte{"token": []byte("  \n")}
	g.Expect(env.Client.Update(context.Background(), &secret)).To(Succeed())
	// Each poll sends a request (the cache may lag the Secret by a moment) and reads the
	// reason the server recorded for the admin.
	rejectedBecause := func(want string) func(g Gomega) {
		return func(g Gomega) {
			resp, b := tn.do("GET", "/Users", nil, "Authorization", "Bearer "+next)
			g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
			g.Expect(b["detail"]).To(Equal("The bearer token is not valid for this SCIM tenant."))
			var s scimv1.ScimSettings
			g.Expect(env.Client.Get(context.Background(), keyOf(tn.ns, "acme"), &s)).To(Succeed())
			g.Expect(s.Status.LastAuthFailure).NotTo(BeNil())
			g.Expect(s.Status.LastAuthFailure.Reason).To(ContainSubstring(want))
		}
	}
	g.Eventually(rejectedBecause("is empty"), 15*time.Second).Should(Succeed())
	g.Expect(env.Client.Delete(context.Background(), &secret)).To(Succeed())
	g.Eventually(rejectedBecause("not found"), 15*time.Second).Should(Succeed())
}

// patchSettings changes the tenant's spec as `kubectl patch` does, without a
// resourceVersion: the server's own status writes cannot make it conflict.
func patchSettings(g Gomega, ns string, mutate func(*scimv1.ScimSettings)) {
	var s scimv1.ScimSettings
	g.Expect(env.Client.Get(context.Background(), keyOf(ns, "acme"), &s)).To(Succeed())
	base := s.DeepCopy()
	mutate(&s)
	g.Expect(env.Client.Patch(context.Background(), &s, client.MergeFrom(base))).To(Succeed())
}

func TestDisabledTenant(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	id := tn.create(g, oktaUser("before@example.com"))["id"].(string)
	patchSettings(g, tn.ns, func(s *scimv1.ScimSettings) { s.Spec.Enabled = ptr.To(false) })
	g.Eventually(func() int {
		resp, _ := tn.do("GET", "/Users", nil)
		return resp.StatusCode
	}).Should(Equal(http.StatusForbidden))
	resp, body := tn.do("POST", "/Users", oktaUser("after@example.com"))
	expectError(g, resp, body, http.StatusForbidden, "")
	g.Expect(body["detail"]).To(ContainSubstring("disabled"))
	resp, body = tn.do("PATCH", "/Users/"+id, entraPatch(map[string]any{"op": "replace", "value": map[string]any{"active": false}}))
	expectError(g, resp, body, http.StatusForbidden, "")
	resp, _ = tn.do("DELETE", "/Users/"+id, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
	var list scimv1.StackUserList
	g.Expect(env.Client.List(context.Background(), &list)).To(Succeed())
	n := 0
	for _, u := range list.Items {
		if u.Namespace == tn.ns {
			n++
			g.Expect(u.IsActive()).To(BeTrue())
		}
	}
	g.Expect(n).To(Equal(1))
	// A wrong token is still a 401, not a hint that the tenant is disabled.
	resp, _ = tn.do("GET", "/Users", nil, "Authorization", "Bearer nope")
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
}

func TestConcurrentDuplicatePosts(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	tn := newTenant(t)
	const n = 20
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			userName := "race@example.com"
			if i%2 == 1 {
				userName = "RACE@example.com" // duplicates differ in case too
			}
			resp, _ := tn.do("POST", "/Users", oktaUser(userName))
			codes[i] = resp.StatusCode
		}(i)
	}
	close(start)
	wg.Wait()
	created, conflicts := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			conflicts++
		}
	}
	g.Expect(created).To(Equal(1), "codes: %v", codes)
	g.Expect(conflicts).To(Equal(n-1), "codes: %v", codes)
	var list scimv1.StackUserList
	g.Expect(env.Client.List(context.Background(), &list)).To(Succeed())
	count := 0
	for _, u := range list.Items {
		if u.Namespace == tn.ns {
			count++
		}
	}
	g.Expect(count).To(Equal(1))
}
