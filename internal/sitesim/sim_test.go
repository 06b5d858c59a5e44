package sitesim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

const token = "sim-token"

type simClient struct {
	t   *testing.T
	srv *httptest.Server
	sim *sitesim.Sim
}

func newSim(t *testing.T, cfg sitesim.Config) *simClient {
	cfg.Token = token
	sim := sitesim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &simClient{t: t, srv: srv, sim: sim}
}

// call sends a request and decodes a JSON answer into a map.
func (c *simClient) call(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return resp.StatusCode, m
}

func TestSim_usersPathIsCaseInsensitiveAndNeedsTheToken(t *testing.T) {
	g := NewWithT(t)
	c := newSim(t, sitesim.Config{})
	c.sim.Seed(sitesim.User{UserName: "a@example.com", Active: true})
	for _, p := range []string{"/api/scim/v2/users", "/api/scim/v2/Users", "/API/SCIM/V2/USERS"} {
		code, body := c.call(http.MethodGet, p, "")
		g.Expect(code).To(Equal(http.StatusOK), p)
		g.Expect(body["totalResults"]).To(BeEquivalentTo(1))
	}
	req, _ := http.NewRequest(http.MethodGet, c.srv.URL+"/api/scim/v2/users", nil)
	req.Header.Set("Authorization", "Bearer nope")
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
	var e map[string]string
	g.Expect(json.NewDecoder(resp.Body).Decode(&e)).To(Succeed())
	g.Expect(e).To(HaveKey("ErrorMessage"))
}

func TestSim_rendersUsersLikeTheSite(t *testing.T) {
	g := NewWithT(t)
	c := newSim(t, sitesim.Config{})
	reg := c.sim.Seed(sitesim.User{UserName: "r@example.com", Email: "r@example.com", Active: true, Department: "Ops"})
	mod := c.sim.Seed(sitesim.User{UserName: "m@example.com", Role: sitesim.RoleModerator, Active: true})
	g.Expect(reg.ID).To(MatchRegexp(`^\d+$`))

	_, r := c.call(http.MethodGet, "/api/scim/v2/users/"+reg.ID, "")
	g.Expect(r).NotTo(HaveKey("userType"), "Registered users have no userType")
	g.Expect(r["profileUrl"]).To(Equal(c.srv.URL + "/accounts/" + reg.ID))
	g.Expect(r["meta"]).To(HaveKeyWithValue("location", c.srv.URL+"/api/scim/v2/users/"+reg.ID))
	g.Expect(r["meta"]).To(HaveKey("created"))
	g.Expect(r["emails"]).To(Equal([]any{map[string]any{"primary": true, "value": "r@example.com"}}))
	g.Expect(r["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]).To(HaveKeyWithValue("department", "Ops"))

	_, m := c.call(http.MethodGet, "/api/scim/v2/users/"+mod.ID, "")
	g.Expect(m["userType"]).To(Equal("Moderator"))

	code, e := c.call(http.MethodGet, "/api/scim/v2/users/42", "")
	g.Expect(code).To(Equal(http.StatusNotFound))
	g.Expect(e).To(HaveKey("ErrorMessage"))
}

func TestSim_pagesHoldAtMost100Users(t *testing.T) {
	g := NewWithT(t)
	c := newSim(t, sitesim.Config{})
	for i := range 130 {
		c.sim.Seed(sitesim.User{UserName: fmt.Sprintf("u%d@example.com", i), Active: i%2 == 0})
	}
	_, p1 := c.call(http.MethodGet, "/api/scim/v2/users?startIndex=1&count=500", "")
	g.Expect(p1["totalResults"]).To(BeEquivalentTo(130))
	g.Expect(p1["Resources"]).To(HaveLen(100))
	_, p2 := c.call(http.MethodGet, "/api/scim/v2/users?startIndex=101&count=100", "")
	g.Expect(p2["Resources"]).To(HaveLen(30))
	// Deactivated users are listed too.
	g.Expect(p2["Resources"].([]any)[1]).To(HaveKeyWithValue("active", false))
}

func TestSim_roleWritesFollowTheSitesOwnSwitches(t *testing.T) {
	cases := map[string]struct {
		mod, admin bool
		from, to   string
		want       string
	}{
		"moderator promotion allowed":   {mod: true, from: "Registered", to: "Moderator", want: "Moderator"},
		"moderator promotion ignored":   {from: "Registered", to: "Moderator", want: "Registered"},
		"admin promotion allowed":       {admin: true, from: "Registered", to: "Admin", want: "Admin"},
		"admin promotion ignored":       {mod: true, from: "Registered", to: "Admin", want: "Registered"},
		"admin demotion ignored":        {mod: true, from: "Admin", to: "Registered", want: "Admin"},
		"moderator to admin needs both": {admin: true, from: "Moderator", to: "Admin", want: "Moderator"},
		"moderator to admin with both":  {mod: true, admin: true, from: "Moderator", to: "Admin", want: "Admin"},
		"unknown value ignored":         {mod: true, admin: true, from: "Registered", to: "Owner", want: "Registered"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			c := newSim(t, sitesim.Config{AllowModeratorPromotion: tc.mod, AllowAdminPromotion: tc.admin})
			u := c.sim.Seed(sitesim.User{UserName: "a@example.com", Role: tc.from, Active: true})
			code, _ := c.call(http.MethodPatch, "/api/scim/v2/users/"+u.ID,
				`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"userType","value":"`+tc.to+`"}]}`)
			g.Expect(code).To(Equal(http.StatusOK), "the site answers 200 even when it ignores the write")
			got, _ := c.sim.User(u.ID)
			g.Expect(got.Role).To(Equal(tc.want))
		})
	}
}

func TestSim_putReplacesTheWholeUser(t *testing.T) {
	g := NewWithT(t)
	c := newSim(t, sitesim.Config{})
	u := c.sim.Seed(sitesim.User{UserName: "a@example.com", ExternalID: "okta-1", Title: "Eng", Active: true})
	code, _ := c.call(http.MethodPut, "/api/scim/v2/users/"+u.ID, `{"userName":"a@example.com","displayName":"A"}`)
	g.Expect(code).To(Equal(http.StatusOK))
	got, _ := c.sim.User(u.ID)
	g.Expect(got.Active).To(BeFalse(), "leaving active out deactivates")
	g.Expect(got.ExternalID).To(BeEmpty(), "leaving externalId out clears it")
	g.Expect(got.Title).To(BeEmpty())
	g.Expect(got.DisplayName).To(Equal("A"))
}

func TestSim_patchChangesOnlyWhatItNames(t *testing.T) {
	g := NewWithT(t)
	c := newSim(t, sitesim.Config{})
	u := c.sim.Seed(sitesim.User{UserName: "a@example.com", ExternalID: "okta-1", Title: "Eng", Active: true})
	code, body := c.call(http.MethodPatch, "/api/scim/v2/users/"+u.ID, `{"Operations":[
		{"op":"replace","path":"active","value":"False"},
		{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Ops"},
		{"op":"replace","value":{"displayName":"Ada","name":{"givenName":"Ada"}}}]}`)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body["active"]).To(BeFalse())
	got, _ := c.sim.User(u.ID)
	g.Expect(got).To(matchFields("a@example.com", "okta-1", "Eng", "Ops", "Ada", "Ada"))
}

// TestSim_patchRenamesTheAccount: a userName PATCH renames the same account; a name
// another account holds (in any case) is refused and changes nothing.
func TestSim_patchRenamesTheAccount(t *testing.T) {
	g := NewWithT(t)
	c := newSim(t, sitesim.Config{})
	u := c.sim.Seed(sitesim.User{UserName: "a@example.com", Active: true})
	c.sim.Seed(sitesim.User{UserName: "taken@example.com", Active: true})
	code, body := c.call(http.MethodPatch, "/api/scim/v2/users/"+u.ID, `{"Operations":[{"op":"replace","path":"userName","value":"b@example.com"}]}`)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(body["id"]).To(Equal(u.ID))
	g.Expect(body["userName"]).To(Equal("b@example.com"))
	code, body = c.call(http.MethodPatch, "/api/scim/v2/users/"+u.ID, `{"Operations":[{"op":"replace","path":"title","value":"T"},{"op":"replace","path":"userName","value":"TAKEN@example.com"}]}`)
	g.Expect(code).To(Equal(http.StatusBadRequest))
	g.Expect(body["ErrorMessage"]).To(ContainSubstring("already in use"))
	got, _ := c.sim.User(u.ID)
	g.Expect(got.UserName).To(Equal("b@example.com"))
	g.Expect(got.Title).To(BeEmpty())
	g.Expect(c.sim.Users()).To(HaveLen(2))
}

// matchFields checks the attributes a PATCH must keep or set.
func matchFields(userName, ext, title, dept, display, given string) OmegaMatcher {
	return And(
		WithTransform(func(u sitesim.User) string { return u.UserName }, Equal(userName)),
		WithTransform(func(u sitesim.User) string { return u.ExternalID }, Equal(ext)),
		WithTransform(func(u sitesim.User) string { return u.Title }, Equal(title)),
		WithTransform(func(u sitesim.User) string { return u.Department }, Equal(dept)),
		WithTransform(func(u sitesim.User) string { return u.DisplayName }, Equal(display)),
		WithTransform(func(u sitesim.User) string { return u.GivenName }, Equal(given)),
	)
}

func TestSim_createAndDeleteAreOptional(t *testing.T) {
	g := NewWithT(t)
	c := newSim(t, sitesim.Config{})
	code, e := c.call(http.MethodPost, "/api/scim/v2/users", `{"userName":"a@example.com"}`)
	g.Expect(code).To(Equal(http.StatusNotFound))
	g.Expect(e).To(HaveKey("ErrorMessage"))
	u := c.sim.Seed(sitesim.User{UserName: "a@example.com", Active: true, Role: sitesim.RoleModerator})
	code, _ = c.call(http.MethodDelete, "/api/scim/v2/users/"+u.ID, "")
	g.Expect(code).To(Equal(http.StatusNotFound), "deletion is off")

	c.sim.SetConfig(func(cfg *sitesim.Config) { cfg.CreateUsers, cfg.DeleteUsers = true, true })
	code, created := c.call(http.MethodPost, "/api/scim/v2/users", `{"userName":"b@example.com","externalId":"x"}`)
	g.Expect(code).To(Equal(http.StatusCreated))
	g.Expect(created["active"]).To(BeTrue())
	code, _ = c.call(http.MethodPost, "/api/scim/v2/users", `{"userName":"B@example.com"}`)
	g.Expect(code).To(Equal(http.StatusConflict))

	code, e = c.call(http.MethodDelete, "/api/scim/v2/users/"+u.ID, "")
	g.Expect(code).To(Equal(http.StatusInternalServerError), "moderators must be demoted first")
	g.Expect(e["ErrorMessage"]).To(ContainSubstring("demoted"))
	g.Expect(c.sim.Edit(u.ID, func(u *sitesim.User) { u.Role = sitesim.RoleRegistered })).To(Succeed())
	code, _ = c.call(http.MethodDelete, "/api/scim/v2/users/"+u.ID, "")
	g.Expect(code).To(Equal(http.StatusNoContent))
	_, ok := c.sim.User(u.ID)
	g.Expect(ok).To(BeFalse())
}

func TestSim_filtersCanBeSwitchedOff(t *testing.T) {
	g := NewWithT(t)
	c := newSim(t, sitesim.Config{})
	c.sim.Seed(sitesim.User{UserName: "a@example.com", ExternalID: "x", Active: true})
	c.sim.Seed(sitesim.User{UserName: "b@example.com", Active: true})
	_, l := c.call(http.MethodGet, `/api/scim/v2/users?filter=userName+eq+%22A@EXAMPLE.com%22`, "")
	g.Expect(l["totalResults"]).To(BeEquivalentTo(1))
	c.sim.SetConfig(func(cfg *sitesim.Config) { cfg.FilterUnsupported = true })
	code, e := c.call(http.MethodGet, `/api/scim/v2/users?filter=externalId+eq+%22x%22`, "")
	g.Expect(code).To(Equal(http.StatusBadRequest))
	g.Expect(e).To(HaveKey("ErrorMessage"))
}

func TestSim_faultsAreInjected(t *testing.T) {
	g := NewWithT(t)
	c := newSim(t, sitesim.Config{ThrottleRate: 1, RetryAfterSeconds: 7})
	req, _ := http.NewRequest(http.MethodGet, c.srv.URL+"/api/scim/v2/users", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusTooManyRequests))
	g.Expect(resp.Header.Get("Retry-After")).To(Equal("7"))
	c.sim.SetConfig(func(cfg *sitesim.Config) { cfg.ThrottleRate, cfg.ServerErrorRate = 0, 1 })
	code, _ := c.call(http.MethodGet, "/api/scim/v2/users", "")
	g.Expect(code).To(Equal(http.StatusServiceUnavailable))
	r := c.sim.Requests()
	g.Expect(r[sitesim.CountThrottled]).To(BeEquivalentTo(1))
	g.Expect(r[sitesim.CountServerErrors]).To(BeEquivalentTo(1))
	g.Expect(r[sitesim.CountTotal]).To(BeEquivalentTo(2))
}

func TestSim_adminEndpoints(t *testing.T) {
	g := NewWithT(t)
	c := newSim(t, sitesim.Config{})
	code, u := c.call(http.MethodPost, "/_sim/users", `{"userName":"a@example.com","active":true}`)
	g.Expect(code).To(Equal(http.StatusCreated))
	id := u["id"].(string)
	code, _ = c.call(http.MethodPatch, "/_sim/users/"+id, `{"active":false,"role":"Admin"}`)
	g.Expect(code).To(Equal(http.StatusOK))
	got, _ := c.sim.User(id)
	g.Expect(got.Active).To(BeFalse())
	g.Expect(got.Role).To(Equal("Admin"), "a hand edit bypasses the switches")
	g.Expect(got.UserName).To(Equal("a@example.com"))

	code, cfg := c.call(http.MethodPatch, "/_sim/config", `{"allowAdminPromotion":true,"latency":"5ms"}`)
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(cfg["latency"]).To(Equal("5ms"))
	g.Expect(c.sim.Config().AllowAdminPromotion).To(BeTrue())
	g.Expect(c.sim.Config().Token).To(Equal(token), "PATCH keeps the other switches")

	c.call(http.MethodGet, "/api/scim/v2/users", "")
	_, state := c.call(http.MethodGet, "/_sim/state", "")
	g.Expect(state["users"]).To(HaveLen(1))
	g.Expect(state["requests"]).To(HaveKeyWithValue(sitesim.CountListUsers, BeEquivalentTo(1)))
	g.Expect(state["config"]).To(HaveKeyWithValue("token", "[redacted]"), "dumps never show the token")
}
