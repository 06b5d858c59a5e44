package bench

import (
	"fmt"
	"net/http"
	"time"
)

// Offboarding during a bulk import: the issue's "a user deactivated at the IdP while a
// 10,000-user push is in flight reaches the site within seconds".

// offboardStaff users are offboarded during the push, offboardGap apart (spread over
// the push's first two minutes).
const (
	offboardStaff = 40
	offboardGap   = 3 * time.Second
)

// offboardingTarget is the p99 an offboarding may take to reach the site during a push.
const offboardingTarget = 5 * time.Second

type staffUser struct{ id, userName string }

// provisionStaff creates n users through SCIM and waits until the site shows each: the
// people offboarded while the push runs.
func provisionStaff(scim, admin string, n int) ([]staffUser, error) {
	staff := make([]staffUser, n)
	err := parallel(n, 8, func(i int) error {
		name := fmt.Sprintf("staff%03d@example.com", i)
		var created struct {
			ID string `json:"id"`
		}
		code, _, err := call(http.MethodPost, scim+"/Users", idpToken, scimUser(name, fmt.Sprintf("staff-%d", i)), &created)
		if err != nil || code != http.StatusCreated {
			return callErr("POST "+name, code, err)
		}
		staff[i] = staffUser{id: created.ID, userName: name}
		return untilSite(admin, name, true)
	})
	return staff, err
}

// offboardDuring deactivates the staff one at a time, gap apart, until stop closes or
// every one is done, timing each from the SCIM 200 to the site showing it inactive.
func offboardDuring(scim, admin string, staff []staffUser, gap time.Duration, stop <-chan struct{}) []time.Duration {
	off := map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}
	var lat []time.Duration
	for _, s := range staff {
		select {
		case <-stop:
			return lat
		case <-time.After(gap):
		}
		code, _, err := call(http.MethodPatch, scim+"/Users/"+s.id, idpToken, off, nil)
		if err != nil || code != http.StatusOK {
			continue
		}
		t0 := time.Now()
		if untilSite(admin, s.userName, false) == nil {
			lat = append(lat, time.Since(t0))
		}
	}
	return lat
}

// offboardingFigures reports the deactivations timed during the push.
func (h *harness) offboardingFigures(lat []time.Duration, pushUsers int) {
	for _, p := range []float64{50, 99} {
		f := h.figure(fmt.Sprintf("offboarding.push.p%.0f", p),
			fmt.Sprintf("offboarding during the %d-user push: SCIM deactivate to site p%.0f (%d users)", pushUsers, p, len(lat)), "ms")
		if len(lat) == 0 {
			f.Note = "no deactivation was timed: the push ended first"
			continue
		}
		f.Samples = []float64{Percentile(lat, p)}
		f.Note = "deactivations, demotions and deletions go ahead of the push's creates in the work queue; idle: time_to_site.lat-idle.deactivate"
		if p == 99 {
			f.Check(fmt.Sprintf("< %s", offboardingTarget), float64(offboardingTarget/time.Millisecond), true)
			f.Explain("the deactivation's own site calls wait in the tenant's site rate limiter behind calls the push's reconciles already reserved")
		}
	}
}
