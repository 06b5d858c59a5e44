package bench

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// groupPush measures a group of cfg.GroupMembers members through the SCIM server: a full
// push (the group, then PATCH adds of 100 members), one member added and one removed
// (Okta's PATCH forms), each as time and the API writes the manager sent for it. Membership is
// one label per member (internal/groups), so the writes should be the members changed.
func (h *harness) groupPush() error {
	n := h.cfg.GroupMembers
	if n <= 0 {
		return nil
	}
	siteURL, _, err := h.site("site-groups", 0)
	if err != nil {
		return err
	}
	const ns = "bench-groups"
	st, err := h.tenant(ns, siteURL)
	if err != nil {
		return err
	}
	// The SCIM server alone: the figures are what a group request costs the API server.
	m, err := h.manager("manager-groups", ns, st, "--controllers=scimsettings", "--scim-rate-limit=-1")
	if err != nil {
		return err
	}
	defer m.proc.Stop()
	log.Printf("filling the group tenant with %d users", n+1)
	if err := parallel(n+1, 16, func(i int) error {
		return h.env.Client.Create(context.Background(), stackUser(ns, fmt.Sprintf("member-%06d", i), fmt.Sprintf("member%06d@example.com", i)))
	}); err != nil {
		return err
	}
	if err := waitFor(5*time.Minute, func() bool { t, err := m.total(); return err == nil && t >= n+1 }); err != nil {
		return fmt.Errorf("the SCIM server never saw %d users: %w", n+1, err)
	}
	members := make([]any, n)
	for i := range members {
		members[i] = map[string]any{"value": fmt.Sprintf("member-%06d", i)}
	}
	extra := fmt.Sprintf("member-%06d", n)
	schema := []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}
	var gid string

	// The full push as Okta and Entra send it: the group, then its members in PATCH
	// batches (a single request with 10,000 members would have to write them all within
	// the server's 45 s write timeout).
	const batch = 100
	measure := func(id, name string, run func() error) error {
		before, err := m.apiWrites()
		if err != nil {
			return err
		}
		start := time.Now()
		if err := run(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		took := time.Since(start)
		after, err := m.apiWrites()
		if err != nil {
			return err
		}
		h.figure(id+".time", name+": time", "s").Samples = []float64{took.Seconds()}
		w := h.figure(id+".api_writes", name+": API writes", "writes")
		w.Samples = []float64{after - before}
		w.Note = "the manager's mutating API requests meanwhile; may include ScimSettings status writes (one per 5 s)"
		return nil
	}
	send := func(method, path string, body any, want int, out any) error {
		code, _, err := call(method, m.scim+path, idpToken, body, out)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if code != want {
			return fmt.Errorf("%s %s: HTTP %d, want %d", method, path, code, want)
		}
		return nil
	}
	patch := func(ops ...any) map[string]any {
		return map[string]any{"schemas": schema, "Operations": append([]any{
			map[string]any{"op": "replace", "value": map[string]any{"id": gid, "displayName": "Bench Group"}}}, ops...)}
	}
	if err := measure("groups.push", fmt.Sprintf("full push of a %d-member group (POST, then PATCH adds of %d)", n, batch), func() error {
		var created struct {
			ID string `json:"id"`
		}
		if err := send(http.MethodPost, "/Groups", map[string]any{"displayName": "Bench Group", "members": []any{}}, http.StatusCreated, &created); err != nil {
			return err
		}
		gid = created.ID
		for from := 0; from < n; from += batch {
			op := map[string]any{"op": "add", "path": "members", "value": members[from:min(from+batch, n)]}
			if err := send(http.MethodPatch, "/Groups/"+gid, patch(op), http.StatusNoContent, nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := measure("groups.add_one", fmt.Sprintf("one member added to a %d-member group (PATCH)", n), func() error {
		return send(http.MethodPatch, "/Groups/"+gid, patch(map[string]any{"op": "add", "path": "members",
			"value": []any{map[string]any{"value": extra}}}), http.StatusNoContent, nil)
	}); err != nil {
		return err
	}
	if err := measure("groups.remove_one", fmt.Sprintf("one member removed from a %d-member group (PATCH)", n+1), func() error {
		return send(http.MethodPatch, "/Groups/"+gid, patch(map[string]any{"op": "remove",
			"path": `members[value eq "` + extra + `"]`}), http.StatusNoContent, nil)
	}); err != nil {
		return err
	}
	var doc struct {
		Members []any `json:"members"`
	}
	code, _, err := call(http.MethodGet, m.scim+"/Groups/"+gid, idpToken, nil, &doc)
	if err != nil {
		return fmt.Errorf("reading the group: %w", err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("reading the group: HTTP %d", code)
	}
	if len(doc.Members) != n {
		log.Printf("the group shows %d members, want %d (the cache may lag)", len(doc.Members), n)
	}
	return nil
}

// apiWrites sums the manager's mutating API requests (client-go's rest_client_requests_total).
func (m *manager) apiWrites() (float64, error) {
	resp, err := httpClient.Get(m.metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	total := 0.0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "rest_client_requests_total{") {
			continue
		}
		if !strings.Contains(line, `method="POST"`) && !strings.Contains(line, `method="PUT"`) &&
			!strings.Contains(line, `method="PATCH"`) && !strings.Contains(line, `method="DELETE"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, err
		}
		total += v
	}
	return total, sc.Err()
}
