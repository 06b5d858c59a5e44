// Package sitesim simulates a Stack Internal Enterprise site's SCIM API as the facts file
// describes it, quirks included: lower-case /users (matched case-insensitively), userType
// omitted for Registered users, role writes silently ignored while the site's own
// promotion switches are off, {"ErrorMessage"} error bodies, at most 100 users per page,
// PUT replacing the whole user, optional create and delete, and fault injection (latency,
// 429 with Retry-After, 5xx). State is in memory; /_sim/ endpoints (and the Go methods
// of Sim) let tests read it, edit users "by hand" and flip switches at runtime.
package sitesim

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Roles the site knows.
const (
	RoleRegistered = "Registered"
	RoleModerator  = "Moderator"
	RoleAdmin      = "Admin"
)

// Duration is a time.Duration written as "1.5s" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts "1.5s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		*d = Duration(v)
		return err
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*d = Duration(n)
	return nil
}

// Config holds the site's switches. The zero value is a site with SCIM on, filters
// supported, no create/delete and no promotion.
type Config struct {
	// Token is the bearer token typed into the site's SCIM settings page. Empty accepts any.
	Token string `json:"token,omitempty"`
	// Disabled is the SCIM On/Off switch turned off: every SCIM call answers 403.
	Disabled bool `json:"disabled,omitempty"`
	// AllowModeratorPromotion and AllowAdminPromotion are the site's own "Allow ...
	// Promotion via a userType property" switches; while off, role writes are ignored
	// with a 200.
	AllowModeratorPromotion bool `json:"allowModeratorPromotion"`
	AllowAdminPromotion     bool `json:"allowAdminPromotion"`
	// CreateUsers lets POST /users create users (newer site versions). Off answers 404.
	CreateUsers bool `json:"createUsers"`
	// DeleteUsers lets DELETE remove users (enabled by the vendor's support). Off answers 404.
	DeleteUsers bool `json:"deleteUsers"`
	// FilterUnsupported makes ?filter= answer FilterErrorStatus (default 400).
	FilterUnsupported bool `json:"filterUnsupported,omitempty"`
	FilterErrorStatus int  `json:"filterErrorStatus,omitempty"`
	// FilterOrUnsupported makes a filter of terms joined by `or` answer 400 (filter support
	// is unverified on the real site; the client must cope either way).
	FilterOrUnsupported bool `json:"filterOrUnsupported,omitempty"`
	// Latency is added to every SCIM call.
	Latency Duration `json:"latency,omitempty"`
	// ThrottleRate is the fraction (0..1) of SCIM calls answered 429 with Retry-After.
	ThrottleRate float64 `json:"throttleRate,omitempty"`
	// RetryAfterSeconds is the Retry-After of a 429 (default 1).
	RetryAfterSeconds int `json:"retryAfterSeconds,omitempty"`
	// ServerErrorRate is the fraction (0..1) of SCIM calls answered ServerErrorStatus.
	ServerErrorRate float64 `json:"serverErrorRate,omitempty"`
	// ServerErrorStatus is the status of an injected server error (default 503).
	ServerErrorStatus int `json:"serverErrorStatus,omitempty"`
	// ExternalURL is the site's public URL for profileUrl and meta.location
	// (default: scheme and host of the request).
	ExternalURL string `json:"externalUrl,omitempty"`
}

// User is a site user as the simulator stores it.
type User struct {
	ID          string    `json:"id"`
	ExternalID  string    `json:"externalId,omitempty"`
	UserName    string    `json:"userName"`
	DisplayName string    `json:"displayName,omitempty"`
	GivenName   string    `json:"givenName,omitempty"`
	FamilyName  string    `json:"familyName,omitempty"`
	Email       string    `json:"email,omitempty"`
	Active      bool      `json:"active"`
	Role        string    `json:"role"`
	Title       string    `json:"title,omitempty"`
	Department  string    `json:"department,omitempty"`
	System      bool      `json:"system,omitempty"`
	Created     time.Time `json:"created"`
}

// State is what /_sim/state dumps.
type State struct {
	Config   Config           `json:"config"`
	Users    []User           `json:"users"`
	Requests map[string]int64 `json:"requests"`
}

// store is the in-memory user table; all methods hold the Sim's lock.
type store struct {
	users  map[string]*User
	nextID int
	// order is users sorted by id, kept until a user is added or removed: a listing of
	// 100,000 users is 1,000 pages, and sorting for each made the simulator, not the
	// operator, the bottleneck of large benchmarks.
	order []*User
}

// sorted is the users in id order; callers must not modify the slice.
func (s *store) sorted() []*User {
	if s.order != nil || len(s.users) == 0 {
		return s.order
	}
	out := slices.Collect(maps.Values(s.users))
	slices.SortFunc(out, func(a, b *User) int {
		x, _ := strconv.Atoi(a.ID)
		y, _ := strconv.Atoi(b.ID)
		return x - y
	})
	s.order = out
	return out
}

// changed drops the sorted order after a user was added or removed.
func (s *store) changed() { s.order = nil }

func (s *store) byUserName(name string) *User {
	for _, u := range s.users {
		if strings.EqualFold(u.UserName, name) {
			return u
		}
	}
	return nil
}

func (s *store) add(u User) *User {
	if u.ID == "" {
		s.nextID++
		u.ID = strconv.Itoa(s.nextID)
	} else if n, err := strconv.Atoi(u.ID); err == nil && n > s.nextID {
		s.nextID = n
	}
	if u.Role == "" {
		u.Role = RoleRegistered
	}
	if u.Created.IsZero() {
		u.Created = time.Now().UTC().Truncate(time.Second)
	}
	p := &u
	s.users[u.ID] = p
	s.changed()
	return p
}

// roleChangeAllowed mirrors the site's own switches: a change between two roles needs the
// switch of every non-Registered role involved.
func roleChangeAllowed(cfg Config, from, to string) bool {
	for _, r := range []string{from, to} {
		switch r {
		case RoleModerator:
			if !cfg.AllowModeratorPromotion {
				return false
			}
		case RoleAdmin:
			if !cfg.AllowAdminPromotion {
				return false
			}
		}
	}
	return true
}

// canonicalRole maps a userType value to a role, "" when the site does not know it.
func canonicalRole(v string) string {
	for _, r := range []string{RoleRegistered, RoleModerator, RoleAdmin} {
		if strings.EqualFold(v, r) {
			return r
		}
	}
	return ""
}
