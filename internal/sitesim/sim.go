package sitesim

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BasePath is where the SCIM API is served, as on a real site.
const BasePath = "/api/scim/v2"

// Request counter keys (see Requests).
const (
	CountTotal        = "total"
	CountThrottled    = "throttled"
	CountServerErrors = "serverErrors"
	CountUnauthorized = "unauthorized"
	CountRoleIgnored  = "roleWritesIgnored"
	CountListUsers    = "GET /users"
	CountGetUser      = "GET /users/{id}"
	CountCreateUser   = "POST /users"
	CountPatchUser    = "PATCH /users/{id}"
	CountPutUser      = "PUT /users/{id}"
	CountDeleteUser   = "DELETE /users/{id}"
)

// Sim is a simulated site: an http.Handler with its state in memory. It is safe for
// concurrent use.
type Sim struct {
	mu       sync.Mutex
	cfg      Config
	store    store
	requests map[string]int64
}

// New builds a simulator with cfg.
func New(cfg Config) *Sim {
	return &Sim{cfg: cfg, store: store{users: map[string]*User{}, nextID: 100000}, requests: map[string]int64{}}
}

// Config returns the current switches.
func (s *Sim) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// SetConfig changes switches at runtime.
func (s *Sim) SetConfig(fn func(*Config)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.cfg)
}

// Seed adds a user as if it had signed in over SAML (no switch applies); an empty ID gets
// the next numeric id.
func (s *Sim) Seed(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.store.add(u)
}

// SeedExamples adds n active users as if they had signed in over SAML (which brings the
// given and family name): seed1@example.com, seed2@example.com, ...
func (s *Sim) SeedExamples(n int) {
	for i := 1; i <= n; i++ {
		s.Seed(User{
			UserName: fmt.Sprintf("seed%d@example.com", i), ExternalID: fmt.Sprintf("seed-%d", i),
			DisplayName: fmt.Sprintf("Seed User %d", i), GivenName: "Seed", FamilyName: fmt.Sprintf("User %d", i),
			Email: fmt.Sprintf("seed%d@example.com", i), Active: true,
		})
	}
}

// modifiable finds a user a SCIM write may touch, answering the site's errors for an
// unknown id or a system account. The caller holds s.mu.
func (s *Sim) modifiable(w http.ResponseWriter, id, verb string) (*User, bool) {
	u, ok := s.store.users[id]
	if !ok {
		writeError(w, http.StatusNotFound, "Could not find user with id "+id)
		return nil, false
	}
	if u.System {
		writeError(w, http.StatusBadRequest, "System accounts cannot be "+verb)
		return nil, false
	}
	return u, true
}

// Edit changes a user "by hand", as a site admin in the site's own admin pages would.
func (s *Sim) Edit(id string, fn func(*User)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.store.users[id]
	if !ok {
		return fmt.Errorf("no user %s", id)
	}
	fn(u)
	u.ID = id
	return nil
}

// User returns one user.
func (s *Sim) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.store.users[id]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// Users returns every user, by id.
func (s *Sim) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.store.users))
	for _, u := range s.store.sorted() {
		out = append(out, *u)
	}
	return out
}

// Requests returns a copy of the request counters.
func (s *Sim) Requests() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// State returns config, users and counters.
func (s *Sim) State() State {
	return State{Config: s.Config(), Users: s.Users(), Requests: s.Requests()}
}

// Reset removes every user and clears the counters.
func (s *Sim) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store.users = map[string]*User{}
	s.store.changed()
	s.requests = map[string]int64{}
}

func (s *Sim) count(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		s.requests[k]++
	}
}

// ServeHTTP serves the SCIM API under BasePath and the test endpoints under /_sim/.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveAdmin(w, r)
		return
	}
	rest, ok := cutPrefixFold(r.URL.Path, BasePath)
	if !ok {
		writeError(w, http.StatusNotFound, "The requested resource was not found")
		return
	}
	rest = strings.Trim(rest, "/")
	resource, id, _ := strings.Cut(rest, "/")
	if !strings.EqualFold(resource, "users") || strings.Contains(id, "/") {
		writeError(w, http.StatusNotFound, "The requested resource was not found")
		return
	}
	s.serveSCIM(w, r, id)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

func (s *Sim) serveSCIM(w http.ResponseWriter, r *http.Request, id string) {
	cfg := s.Config()
	s.count(CountTotal)
	if cfg.Latency > 0 {
		t := time.NewTimer(time.Duration(cfg.Latency))
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	if cfg.Token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(cfg.Token)) != 1 {
			s.count(CountUnauthorized)
			writeError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
	}
	if cfg.Disabled {
		writeError(w, http.StatusForbidden, "SCIM is disabled for this site")
		return
	}
	if cfg.ThrottleRate > 0 && rand.Float64() < cfg.ThrottleRate {
		s.count(CountThrottled)
		ra := cfg.RetryAfterSeconds
		if ra <= 0 {
			ra = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		writeError(w, http.StatusTooManyRequests, "Too many requests")
		return
	}
	if cfg.ServerErrorRate > 0 && rand.Float64() < cfg.ServerErrorRate {
		s.count(CountServerErrors)
		status := cfg.ServerErrorStatus
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		writeError(w, status, "The service is temporarily unavailable")
		return
	}
	base := siteURL(cfg, r)
	switch {
	case id == "" && r.Method == http.MethodGet:
		s.count(CountListUsers)
		s.list(w, r, cfg, base)
	case id == "" && r.Method == http.MethodPost:
		s.count(CountCreateUser)
		s.create(w, r, cfg, base)
	case id != "" && r.Method == http.MethodGet:
		s.count(CountGetUser)
		s.get(w, id, base)
	case id != "" && r.Method == http.MethodPatch:
		s.count(CountPatchUser)
		s.patch(w, r, id, base)
	case id != "" && r.Method == http.MethodPut:
		s.count(CountPutUser)
		s.put(w, r, id, base)
	case id != "" && r.Method == http.MethodDelete:
		s.count(CountDeleteUser)
		s.delete(w, id, cfg)
	default:
		writeError(w, http.StatusMethodNotAllowed, "The requested method is not supported")
	}
}

func siteURL(cfg Config, r *http.Request) string {
	if cfg.ExternalURL != "" {
		return strings.TrimRight(cfg.ExternalURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Sim) list(w http.ResponseWriter, r *http.Request, cfg Config, base string) {
	q := r.URL.Query()
	var match func(*User) bool
	if f := q.Get("filter"); f != "" {
		if cfg.FilterUnsupported {
			status := cfg.FilterErrorStatus
			if status == 0 {
				status = http.StatusBadRequest
			}
			writeError(w, status, "Filtering is not supported")
			return
		}
		m, err := parseFilter(f, cfg.FilterOrUnsupported)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		match = m
	}
	start, _ := strconv.Atoi(q.Get("startIndex"))
	start = max(start, 1)
	count := 100
	if v := q.Get("count"); v != "" {
		count, _ = strconv.Atoi(v)
		count = min(max(count, 0), 100)
	}
	s.mu.Lock()
	var all []*User
	for _, u := range s.store.sorted() {
		if match == nil || match(u) {
			all = append(all, u)
		}
	}
	page := []map[string]any{}
	if start-1 < len(all) {
		for _, u := range all[start-1 : min(start-1+count, len(all))] {
			page = append(page, render(u, base))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":      []string{"urn:ietf:params:scim:api:messages:2.0:ListResponse"},
		"totalResults": len(all),
		"startIndex":   start,
		"itemsPerPage": len(page),
		"Resources":    page,
	})
}

// parseFilter understands `attr eq "value"` for userName, externalId, id and emails, and
// such terms joined by `or` unless orUnsupported.
func parseFilter(f string, orUnsupported bool) (func(*User) bool, error) {
	var terms []func(*User) bool
	rest := strings.TrimSpace(f)
	for {
		attr, after, ok := strings.Cut(rest, " ")
		op, after2, ok2 := strings.Cut(strings.TrimLeft(after, " "), " ")
		if !ok || !ok2 || !strings.EqualFold(op, "eq") {
			return nil, errors.New("Unsupported filter")
		}
		quoted, err := strconv.QuotedPrefix(strings.TrimLeft(after2, " "))
		if err != nil {
			return nil, errors.New("Unsupported filter value")
		}
		v, _ := strconv.Unquote(quoted)
		term, err := filterTerm(attr, v)
		if err != nil {
			return nil, err
		}
		terms = append(terms, term)
		rest = strings.TrimSpace(strings.TrimLeft(after2, " ")[len(quoted):])
		if rest == "" {
			break
		}
		next, ok := cutPrefixFold(rest, "or ")
		if !ok || orUnsupported {
			return nil, errors.New("Unsupported filter")
		}
		rest = strings.TrimSpace(next)
	}
	return func(u *User) bool {
		for _, t := range terms {
			if t(u) {
				return true
			}
		}
		return false
	}, nil
}

func filterTerm(attr, v string) (func(*User) bool, error) {
	switch strings.ToLower(attr) {
	case "username":
		return func(u *User) bool { return strings.EqualFold(u.UserName, v) }, nil
	case "externalid":
		return func(u *User) bool { return u.ExternalID == v }, nil
	case "id":
		return func(u *User) bool { return u.ID == v }, nil
	case "emails", "emails.value":
		return func(u *User) bool { return strings.EqualFold(u.Email, v) }, nil
	}
	return nil, errors.New("Unsupported filter attribute")
}

func (s *Sim) get(w http.ResponseWriter, id, base string) {
	s.mu.Lock()
	u, ok := s.store.users[id]
	var body map[string]any
	if ok {
		body = render(u, base)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Could not find user with id "+id)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Sim) create(w http.ResponseWriter, r *http.Request, cfg Config, base string) {
	if !cfg.CreateUsers {
		// Older versions have no such route.
		writeError(w, http.StatusNotFound, "The requested resource was not found")
		return
	}
	var in wireUser
	if err := decode(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if in.UserName == "" {
		writeError(w, http.StatusBadRequest, "userName is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store.byUserName(in.UserName) != nil {
		writeError(w, http.StatusConflict, "A user with this userName already exists")
		return
	}
	u := User{Active: true, Role: RoleRegistered}
	in.replaceInto(&u)
	if in.Active != nil {
		u.Active = *in.Active
	}
	if in.UserType != nil {
		s.writeRole(&u, *in.UserType)
	}
	p := s.store.add(u)
	writeJSON(w, http.StatusCreated, render(p, base))
}

func (s *Sim) patch(w http.ResponseWriter, r *http.Request, id, base string) {
	var req struct {
		Operations []struct {
			Op    string          `json:"op"`
			Path  string          `json:"path"`
			Value json.RawMessage `json:"value"`
		} `json:"Operations"`
	}
	if err := decode(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.modifiable(w, id, "modified")
	if !ok {
		return
	}
	next := *u
	for _, op := range req.Operations {
		switch strings.ToLower(op.Op) {
		case "replace", "add":
			if op.Path == "" {
				var in wireUser
				if err := json.Unmarshal(op.Value, &in); err != nil {
					writeError(w, http.StatusBadRequest, "Invalid patch value")
					return
				}
				in.mergeInto(&next)
				if in.UserType != nil {
					s.writeRole(&next, *in.UserType)
				}
				continue
			}
			if err := s.setPath(&next, op.Path, op.Value); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
		case "remove":
			if err := s.setPath(&next, op.Path, json.RawMessage(`""`)); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
		default:
			writeError(w, http.StatusBadRequest, "Unsupported patch operation "+op.Op)
			return
		}
	}
	*u = next
	writeJSON(w, http.StatusOK, render(u, base))
}

// setPath applies one patch path; unknown paths are ignored, as the site does.
func (s *Sim) setPath(u *User, path string, raw json.RawMessage) error {
	str := func() (string, error) {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", errors.New("Invalid value for " + path)
		}
		return v, nil
	}
	var err error
	switch p := strings.ToLower(path); {
	case p == "active":
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			var sv string
			if json.Unmarshal(raw, &sv) != nil {
				return errors.New("Invalid value for active")
			}
			b, err = strconv.ParseBool(strings.ToLower(sv))
			if err != nil {
				return errors.New("Invalid value for active")
			}
		}
		u.Active = b
	case p == "usertype":
		v, err := str()
		if err != nil {
			return err
		}
		s.writeRole(u, v)
	case p == "displayname":
		u.DisplayName, err = str()
	case p == "title":
		u.Title, err = str()
	case p == "externalid":
		u.ExternalID, err = str()
	case p == "username":
		// A rename keeps the account; a name another account has is refused.
		var v string
		if v, err = str(); err == nil {
			if other := s.store.byUserName(v); other != nil && other.ID != u.ID {
				return errors.New("userName " + v + " is already in use")
			}
			u.UserName = v
		}
	case p == "name.givenname":
		u.GivenName, err = str()
	case p == "name.familyname":
		u.FamilyName, err = str()
	case p == "emails":
		var es []wireEmail
		if json.Unmarshal(raw, &es) != nil {
			return errors.New("Invalid value for emails")
		}
		u.Email = primaryEmail(es)
	case strings.HasPrefix(p, "emails[") && strings.HasSuffix(p, "].value"):
		u.Email, err = str()
	case p == strings.ToLower(schemaEnterprise)+":department" || p == "department":
		u.Department, err = str()
	}
	return err
}

// writeRole applies a userType write the way the site does: unknown values and changes
// the site's switches do not allow are ignored without an error.
func (s *Sim) writeRole(u *User, value string) {
	to := canonicalRole(value)
	if to == "" || to == u.Role {
		if to == "" {
			s.requests[CountRoleIgnored]++
		}
		return
	}
	if !roleChangeAllowed(s.cfg, u.Role, to) {
		s.requests[CountRoleIgnored]++
		return
	}
	u.Role = to
}

func (s *Sim) put(w http.ResponseWriter, r *http.Request, id, base string) {
	var in wireUser
	if err := decode(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.modifiable(w, id, "modified")
	if !ok {
		return
	}
	if in.UserName == "" {
		writeError(w, http.StatusBadRequest, "userName is required")
		return
	}
	// PUT replaces the whole user: what is left out is cleared, and a missing active
	// deactivates. A missing userType asks for Registered.
	next := User{ID: u.ID, Role: u.Role, Created: u.Created}
	in.replaceInto(&next)
	next.Active = in.Active != nil && *in.Active
	role := RoleRegistered
	if in.UserType != nil {
		role = *in.UserType
	}
	s.writeRole(&next, role)
	*u = next
	writeJSON(w, http.StatusOK, render(u, base))
}

func (s *Sim) delete(w http.ResponseWriter, id string, cfg Config) {
	if !cfg.DeleteUsers {
		writeError(w, http.StatusNotFound, "The requested resource was not found")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.modifiable(w, id, "deleted")
	if !ok {
		return
	}
	if u.Role != RoleRegistered {
		writeError(w, http.StatusInternalServerError, "SCIM user deletion failed - moderators and admins must be demoted before deletion")
		return
	}
	delete(s.store.users, id)
	s.store.changed()
	w.WriteHeader(http.StatusNoContent)
}

func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return errors.New("Could not read the request body")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errors.New("The request body is not valid JSON")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers in the site's own error shape, not the SCIM one.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"ErrorMessage": msg})
}
