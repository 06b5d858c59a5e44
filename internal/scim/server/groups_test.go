package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/groups"
)

const groupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group"

func patchOps(ops ...map[string]any) map[string]any {
	l := make([]any, len(ops))
	for i, op := range ops {
		l[i] = op
	}
	return map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": l}
}

func memberList(ids ...string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = map[string]any{"value": id, "display": id}
	}
	return out
}

// users creates n users and returns their ids.
func (tn *tenant) users(g Gomega, prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = tn.create(g, oktaUser(fmt.Sprintf("%s%d@example.com", prefix, i)))["id"].(string)
	}
	return ids
}

// members reads a group's member ids over SCIM.
func (tn *tenant) members(g Gomega, gid string) []string {
	resp, doc := tn.do("GET", "/Groups/"+gid, nil)
	g.ExpectWithOffset(1, resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	var ids []string
	l, _ := doc["members"].([]any)
	for _, m := range l {
		ids = append(ids, m.(map[string]any)["value"].(string))
	}
	slices.Sort(ids)
	return ids
}

func (tn *tenant) eventuallyMembers(gid string, ids ...string) {
	tn.t.Helper()
	want := slices.Clone(ids)
	slices.Sort(want)
	if len(want) == 0 {
		want = nil
	}
	NewWithT(tn.t).Eventually(func(g Gomega) { g.Expect(tn.members(g, gid)).To(Equal(want)) }, 10*time.Second, 50*time.Millisecond).Should(Succeed())
}

func (tn *tenant) group(g Gomega, id string) *scimv1.StackGroup {
	var sg scimv1.StackGroup
	g.ExpectWithOffset(1, env.Client.Get(context.Background(), keyOf(tn.ns, id), &sg)).To(Succeed())
	return &sg
}

// TestGroups_oktaPushGroupsFlow follows Okta Push Groups: the Test API Credentials list,
// create with no members, membership PATCHes that always carry the path-less
// replace of {id, displayName}, member adds, a filtered remove, a full member replace, a
// rename and an unlink with delete.
func TestGroups_oktaPushGroupsFlow(t *testing.T) {
	g := NewWithT(t)
	tn := newTenant(t)
	ids := tn.users(g, "okta-push", 3)

	resp, body := tn.do("GET", "/Groups?startIndex=1&count=100", nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(body["totalResults"]).To(Equal(0.0))

	resp, created := tn.do("POST", "/Groups", map[string]any{"schemas": []any{groupSchema}, "displayName": "Engineering", "members": []any{}})
	g.Expect(resp.StatusCode).To(Equal(http.StatusCreated), "%v", created)
	gid := created["id"].(string)
	g.Expect(resp.Header.Get("Location")).To(Equal(tn.base + "/Groups/" + gid))
	g.Expect(created).To(HaveKeyWithValue("displayName", "Engineering"))
	g.Expect(created).To(HaveKeyWithValue("members", BeEmpty()))
	g.Expect(created["meta"]).To(HaveKeyWithValue("resourceType", "Group"))
	g.Expect(tn.group(g, gid).Spec.DisplayName).To(Equal("Engineering"))

	idName := map[string]any{"op": "replace", "value": map[string]any{"id": gid, "displayName": "Engineering"}}
	resp, body = tn.do("PATCH", "/Groups/"+gid, patchOps(idName,
		map[string]any{"op": "add", "path": "members", "value": memberList(ids[0], ids[1])}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent), "%v", body)
	tn.eventuallyMembers(gid, ids[0], ids[1])
	// The path-less replace of an unchanged name writes nothing to the group.
	g.Expect(tn.group(g, gid).Generation).To(Equal(int64(1)))

	// The member shows its group, as a read-only attribute and in its labels.
	u := tn.user(g, ids[0])
	g.Expect(u.Labels).To(HaveKeyWithValue(scimv1.LabelGroupPrefix+gid, string(tn.group(g, gid).UID)))
	pending := audit.Pending(u)
	g.Expect(pending[0].Action).To(Equal(audit.ActionGroupJoin))
	g.Expect(pending[0].Message).To(ContainSubstring(`"Engineering"`))
	g.Expect(pending[0].Actor.RequestID).NotTo(BeEmpty())
	g.Expect(pending[0].Changes).To(Equal([]scimv1.FieldChange{{Field: "groups", New: "Engineering"}}))
	g.Eventually(func(g Gomega) {
		_, doc := tn.do("GET", "/Users/"+ids[0], nil)
		g.Expect(doc["groups"]).To(ConsistOf(HaveKeyWithValue("value", gid)))
		g.Expect(doc["groups"]).To(ConsistOf(HaveKeyWithValue("display", "Engineering")))
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	_, doc := tn.do("GET", "/Users/"+ids[2], nil)
	g.Expect(doc).NotTo(HaveKey("groups"))
	// Okta PUTs back what it read, groups included: read-only, so nothing changes.
	gen := tn.user(g, ids[0]).Generation
	_, doc = tn.do("GET", "/Users/"+ids[0], nil)
	resp, doc = tn.do("PUT", "/Users/"+ids[0], doc)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", doc)
	g.Expect(doc["groups"]).To(HaveLen(1))
	g.Expect(tn.user(g, ids[0]).Generation).To(Equal(gen))

	// A filtered remove takes out just that member.
	resp, body = tn.do("PATCH", "/Groups/"+gid, patchOps(idName,
		map[string]any{"op": "remove", "path": fmt.Sprintf(`members[value eq "%s"]`, ids[0])}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent), "%v", body)
	tn.eventuallyMembers(gid, ids[1])
	g.Expect(audit.Pending(tn.user(g, ids[0]))[0].Action).To(Equal(audit.ActionGroupLeave))

	// A full member replace writes only the members that change.
	untouched := tn.user(g, ids[1]).ResourceVersion
	resp, body = tn.do("PATCH", "/Groups/"+gid, patchOps(idName,
		map[string]any{"op": "replace", "path": "members", "value": memberList(ids[1], ids[2])}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent), "%v", body)
	tn.eventuallyMembers(gid, ids[1], ids[2])
	g.Expect(tn.user(g, ids[1]).ResourceVersion).To(Equal(untouched))

	// Rename through Okta's path-less replace.
	resp, body = tn.do("PATCH", "/Groups/"+gid, patchOps(map[string]any{"op": "replace", "value": map[string]any{"id": gid, "displayName": "Platform"}}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent), "%v", body)
	g.Expect(tn.group(g, gid).Spec.DisplayName).To(Equal("Platform"))
	g.Eventually(func(g Gomega) {
		resp, body := tn.do("GET", "/Groups?filter="+url.QueryEscape(`displayName eq "platform"`), nil)
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		g.Expect(body["totalResults"]).To(Equal(1.0))
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())

	// Unlink with delete: the group is gone for SCIM at once.
	resp, _ = tn.do("DELETE", "/Groups/"+gid, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent))
	resp, body = tn.do("GET", "/Groups/"+gid, nil)
	expectError(g, resp, body, http.StatusNotFound, "")
	resp, body = tn.do("DELETE", "/Groups/"+gid, nil)
	expectError(g, resp, body, http.StatusNotFound, "")
	g.Eventually(func(g Gomega) {
		_, doc := tn.do("GET", "/Users/"+ids[1], nil)
		g.Expect(doc).NotTo(HaveKey("groups"))
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
}

// TestGroups_oktaAppWizardPut: apps built with Okta's App Integration Wizard replace the
// whole group with PUT; only members whose membership changes are written.
func TestGroups_oktaAppWizardPut(t *testing.T) {
	g := NewWithT(t)
	tn := newTenant(t)
	ids := tn.users(g, "okta-aiw", 3)
	resp, created := tn.do("POST", "/Groups", map[string]any{"schemas": []any{groupSchema}, "displayName": "Support", "members": memberList(ids[0], ids[1])})
	g.Expect(resp.StatusCode).To(Equal(http.StatusCreated), "%v", created)
	gid := created["id"].(string)
	g.Expect(created["members"]).To(HaveLen(2))
	tn.eventuallyMembers(gid, ids[0], ids[1])

	kept := tn.user(g, ids[1]).ResourceVersion
	created["members"] = memberList(ids[1], ids[2])
	created["externalId"] = "00g-okta"
	resp, put := tn.do("PUT", "/Groups/"+gid, created)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", put)
	g.Expect(put).To(HaveKeyWithValue("externalId", "00g-okta"))
	g.Expect(put["members"]).To(ConsistOf(HaveKeyWithValue("value", ids[1]), HaveKeyWithValue("value", ids[2])))
	tn.eventuallyMembers(gid, ids[1], ids[2])
	g.Expect(tn.user(g, ids[1]).ResourceVersion).To(Equal(kept))

	// A PUT without members removes them all (RFC 7644 section 3.5.1).
	delete(created, "members")
	resp, put = tn.do("PUT", "/Groups/"+gid, created)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), "%v", put)
	tn.eventuallyMembers(gid)
}

// TestGroups_entraGroupProvisioning follows Entra: look up by displayName without members,
// create without members, add with capitalised ops and "$ref": null, and remove with a
// value list and no filter, which removes only the listed members.
func TestGroups_entraGroupProvisioning(t *testing.T) {
	g := NewWithT(t)
	tn := newTenant(t)
	ids := tn.users(g, "entra", 3)

	resp, body := tn.do("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "Sales"`), nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(body["totalResults"]).To(Equal(0.0))
	resp, created := tn.do("POST", "/Groups", map[string]any{"schemas": []any{groupSchema}, "displayName": "Sales", "externalId": "7a1f-entra"})
	g.Expect(resp.StatusCode).To(Equal(http.StatusCreated), "%v", created)
	gid := created["id"].(string)

	for _, id := range ids {
		resp, body = tn.do("PATCH", "/Groups/"+gid, patchOps(map[string]any{"op": "Add", "path": "members",
			"value": []any{map[string]any{"$ref": nil, "value": id}}}))
		g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent), "%v", body)
	}
	tn.eventuallyMembers(gid, ids...)

	resp, body = tn.do("PATCH", "/Groups/"+gid, patchOps(map[string]any{"op": "Remove", "path": "members",
		"value": []any{map[string]any{"value": ids[0]}}}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent), "%v", body)
	tn.eventuallyMembers(gid, ids[1], ids[2])

	resp, body = tn.do("GET", "/Groups/"+gid+"?excludedAttributes=members", nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(body).NotTo(HaveKey("members"))
	g.Expect(body).To(HaveKeyWithValue("externalId", "7a1f-entra"))
	resp, body = tn.do("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`externalId eq "7a1f-entra"`), nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(body["totalResults"]).To(Equal(1.0))
	g.Expect(body["Resources"].([]any)[0]).NotTo(HaveKey("members"))

	resp, body = tn.do("PATCH", "/Groups/"+gid, patchOps(map[string]any{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent), "%v", body)
	g.Expect(tn.group(g, gid).Spec.DisplayName).To(Equal("Sales EMEA"))

	// Entra's validator: a remove of all members (RFC form, no value) empties the group.
	resp, body = tn.do("PATCH", "/Groups/"+gid, patchOps(map[string]any{"op": "Remove", "path": "members"}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent), "%v", body)
	tn.eventuallyMembers(gid)
}

// TestGroups_badRequestsWriteNothing: unknown member ids, duplicate display names and bad
// bodies answer a SCIM 4xx, and neither the group nor any member is changed.
func TestGroups_badRequestsWriteNothing(t *testing.T) {
	g := NewWithT(t)
	tn := newTenant(t)
	ids := tn.users(g, "bad", 2)
	resp, created := tn.do("POST", "/Groups", map[string]any{"displayName": "Ops", "members": memberList(ids[0])})
	g.Expect(resp.StatusCode).To(Equal(http.StatusCreated), "%v", created)
	gid := created["id"].(string)
	resp, other := tn.do("POST", "/Groups", map[string]any{"displayName": "Other"})
	g.Expect(resp.StatusCode).To(Equal(http.StatusCreated), "%v", other)
	tn.eventuallyMembers(gid, ids[0])
	before := tn.user(g, ids[1]).ResourceVersion
	groupBefore := tn.group(g, gid).ResourceVersion

	for name, tc := range map[string]struct {
		method, path string
		body         any
		status       int
		scimType     string
	}{
		"create with an unknown member":          {"POST", "/Groups", map[string]any{"displayName": "New", "members": memberList(ids[1], "u-nobody")}, 400, "invalidValue"},
		"create a duplicate name":                {"POST", "/Groups", map[string]any{"displayName": "ops"}, 409, "uniqueness"},
		"create without a name":                  {"POST", "/Groups", map[string]any{"members": memberList(ids[1])}, 400, "invalidValue"},
		"create with members not a list":         {"POST", "/Groups", map[string]any{"displayName": "New", "members": "everyone"}, 400, "invalidValue"},
		"create with a nested group":             {"POST", "/Groups", map[string]any{"displayName": "New", "members": []any{map[string]any{"value": gid, "type": "Group"}}}, 400, "invalidValue"},
		"create with an unknown attribute":       {"POST", "/Groups", map[string]any{"displayName": "New", "owner": "me"}, 400, "invalidValue"},
		"not JSON":                               {"POST", "/Groups", `{"displayName":`, 400, "invalidSyntax"},
		"add an unknown member with a known one": {"PATCH", "/Groups/" + gid, patchOps(map[string]any{"op": "add", "path": "members", "value": memberList(ids[1], "u-ghost")}), 400, "invalidValue"},
		"rename to a taken name":                 {"PATCH", "/Groups/" + gid, patchOps(map[string]any{"op": "add", "path": "members", "value": memberList(ids[1])}, map[string]any{"op": "replace", "path": "displayName", "value": "OTHER"}), 409, "uniqueness"},
		"remove without a path":                  {"PATCH", "/Groups/" + gid, patchOps(map[string]any{"op": "remove"}), 400, "noTarget"},
		"remove the display name":                {"PATCH", "/Groups/" + gid, patchOps(map[string]any{"op": "remove", "path": "displayName"}), 400, "mutability"},
		"unknown attribute path":                 {"PATCH", "/Groups/" + gid, patchOps(map[string]any{"op": "replace", "path": "owner", "value": "me"}), 400, "invalidPath"},
		"add through a filter":                   {"PATCH", "/Groups/" + gid, patchOps(map[string]any{"op": "add", "path": `members[value eq "x"]`, "value": map[string]any{}}), 400, "invalidPath"},
		"bad member filter":                      {"PATCH", "/Groups/" + gid, patchOps(map[string]any{"op": "remove", "path": `members[value eq]`}), 400, "invalidPath"},
		"no Operations":                          {"PATCH", "/Groups/" + gid, map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}}, 400, "invalidSyntax"},
		"PUT with an unknown member":             {"PUT", "/Groups/" + gid, map[string]any{"displayName": "Ops", "members": memberList(ids[1], "u-ghost")}, 400, "invalidValue"},
		"unknown group":                          {"PATCH", "/Groups/g-nothing", patchOps(map[string]any{"op": "add", "path": "members", "value": memberList(ids[1])}), 404, ""},
	} {
		resp, body := tn.do(tc.method, tc.path, tc.body)
		expectError(g, resp, body, tc.status, tc.scimType)
		g.Expect(tn.user(g, ids[1]).ResourceVersion).To(Equal(before), name)
		g.Expect(tn.group(g, gid).ResourceVersion).To(Equal(groupBefore), name)
	}
	resp, body := tn.do("POST", "/Groups", map[string]any{"displayName": "New", "members": memberList(ids[1], "u-nobody")})
	g.Expect(body["detail"]).To(ContainSubstring(`"u-nobody"`))
	g.Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
	resp, body = tn.do("GET", "/Groups?filter="+url.QueryEscape(`displayName eq "New"`), nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(body["totalResults"]).To(Equal(0.0))
}

// TestGroups_listFiltersPagingAndAttributes: filters on displayName, externalId, id and
// members.value; pages in a stable order; attributes and excludedAttributes.
func TestGroups_listFiltersPagingAndAttributes(t *testing.T) {
	g := NewWithT(t)
	tn := newTenant(t)
	ids := tn.users(g, "list", 2)
	var gids []string
	for i, name := range []string{"Alpha", "Beta", "Gamma"} {
		body := map[string]any{"displayName": name, "externalId": fmt.Sprintf("ext-%d", i)}
		if i > 0 {
			body["members"] = memberList(ids[i-1])
		}
		resp, doc := tn.do("POST", "/Groups", body)
		g.Expect(resp.StatusCode).To(Equal(http.StatusCreated), "%v", doc)
		gids = append(gids, doc["id"].(string))
	}
	g.Eventually(func(g Gomega) {
		_, body := tn.do("GET", "/Groups", nil)
		g.Expect(body["totalResults"]).To(Equal(3.0))
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())

	var paged []string
	for start := 1; start <= 3; start++ {
		resp, body := tn.do("GET", fmt.Sprintf("/Groups?startIndex=%d&count=1", start), nil)
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		g.Expect(body["itemsPerPage"]).To(Equal(1.0))
		g.Expect(body["totalResults"]).To(Equal(3.0))
		paged = append(paged, body["Resources"].([]any)[0].(map[string]any)["id"].(string))
	}
	// Creation time (one-second resolution), then id: pages follow the full list's order.
	_, all := tn.do("GET", "/Groups?excludedAttributes=members", nil)
	var order []string
	for _, r := range all["Resources"].([]any) {
		order = append(order, r.(map[string]any)["id"].(string))
	}
	g.Expect(paged).To(Equal(order))
	g.Expect(paged).To(ConsistOf(gids))

	tn.eventuallyMembers(gids[1], ids[0])
	tn.eventuallyMembers(gids[2], ids[1])
	for filter, want := range map[string][]string{
		`displayName eq "beta"`:                      {gids[1]},
		`externalId eq "ext-2"`:                      {gids[2]},
		fmt.Sprintf(`id eq "%s"`, gids[0]):           {gids[0]},
		fmt.Sprintf(`members.value eq "%s"`, ids[0]): {gids[1]},
		`displayName sw "a"`:                         {gids[0]},
	} {
		resp, body := tn.do("GET", "/Groups?filter="+url.QueryEscape(filter), nil)
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK), filter)
		var got []string
		for _, r := range body["Resources"].([]any) {
			got = append(got, r.(map[string]any)["id"].(string))
		}
		g.Expect(got).To(Equal(want), filter)
	}

	_, body := tn.do("GET", "/Groups/"+gids[1]+"?attributes=displayName", nil)
	g.Expect(body).To(HaveKeyWithValue("displayName", "Beta"))
	g.Expect(body).NotTo(HaveKey("members"))
	g.Expect(body).NotTo(HaveKey("externalId"))
	_, body = tn.do("GET", "/Groups/"+gids[1]+"?attributes=members", nil)
	g.Expect(body["members"]).To(ConsistOf(HaveKeyWithValue("value", ids[0])))
	resp, body := tn.do("GET", "/Groups?filter="+url.QueryEscape(`displayName eq`), nil)
	expectError(g, resp, body, http.StatusBadRequest, "invalidFilter")
}

// TestGroups_discoveryDescribesGroups: ResourceTypes and Schemas describe Groups.
func TestGroups_discoveryDescribesGroups(t *testing.T) {
	g := NewWithT(t)
	tn := newTenant(t)
	resp, body := tn.do("GET", "/ResourceTypes/Group", nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	g.Expect(body).To(HaveKeyWithValue("endpoint", "/Groups"))
	g.Expect(body["description"]).NotTo(ContainSubstring("not supported"))
	resp, body = tn.do("GET", "/Schemas/"+groupSchema, nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	var names []string
	for _, a := range body["attributes"].([]any) {
		names = append(names, a.(map[string]any)["name"].(string))
	}
	g.Expect(names).To(ContainElements("displayName", "members", "externalId"))
	resp, body = tn.do("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", nil)
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	for _, a := range body["attributes"].([]any) {
		if a.(map[string]any)["name"] == "groups" {
			g.Expect(a).To(HaveKeyWithValue("mutability", "readOnly"))
			g.Expect(a.(map[string]any)["description"]).NotTo(ContainSubstring("not supported"))
		}
	}
}

// TestGroups_staleLabelOfADeletedGroupDoesNotCount: a label left by a deleted group of
// the same name never makes a user a member of the group that replaces it.
func TestGroups_staleLabelOfADeletedGroupDoesNotCount(t *testing.T) {
	g := NewWithT(t)
	tn := newTenant(t)
	ids := tn.users(g, "stale", 1)
	resp, created := tn.do("POST", "/Groups", map[string]any{"displayName": "Temp"})
	g.Expect(resp.StatusCode).To(Equal(http.StatusCreated), "%v", created)
	gid := created["id"].(string)
	// The label of an earlier group with this name.
	u := tn.user(g, ids[0])
	base := u.DeepCopy()
	u.Labels[scimv1.LabelGroupPrefix+gid] = "0b5e7c1e-0000-0000-0000-000000000000"
	g.Expect(env.Client.Patch(context.Background(), u, client.MergeFrom(base))).To(Succeed())
	g.Consistently(func(g Gomega) { g.Expect(tn.members(g, gid)).To(BeEmpty()) }, time.Second, 100*time.Millisecond).Should(Succeed())
	g.Expect(groups.IsMember(tn.user(g, ids[0]), tn.group(g, gid))).To(BeFalse())
	// Adding the user writes the current group's UID.
	resp, body := tn.do("PATCH", "/Groups/"+gid, patchOps(map[string]any{"op": "add", "path": "members", "value": memberList(ids[0])}))
	g.Expect(resp.StatusCode).To(Equal(http.StatusNoContent), "%v", body)
	tn.eventuallyMembers(gid, ids[0])
}
