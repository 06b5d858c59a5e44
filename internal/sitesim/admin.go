package sitesim

import (
	"encoding/json"
	"net/http"
	"strings"
)

// serveAdmin serves the test endpoints, which bypass token, faults and switches:
//
//	GET    /_sim/state        config, users and request counters
//	GET    /_sim/requests     request counters only (cheap with many users)
//	POST   /_sim/reset        remove every user, clear counters
//	GET    /_sim/config       the switches
//	PUT    /_sim/config       replace the switches
//	PATCH  /_sim/config       change some switches (JSON merge)
//	POST   /_sim/users        add a user as if it signed in over SAML
//	GET    /_sim/users?userName=x  one user by userName (case-insensitive)
//	GET    /_sim/users/{id}   one user
//	PATCH  /_sim/users/{id}   edit a user "by hand" (JSON merge of the stored user)
//	DELETE /_sim/users/{id}   remove a user
func (s *Sim) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(strings.TrimPrefix(r.URL.Path, "/_sim/"), "/")
	what, id, _ := strings.Cut(path, "/")
	switch {
	case what == "state" && r.Method == http.MethodGet:
		st := s.State()
		st.Config = redacted(st.Config)
		writeJSON(w, http.StatusOK, st)
	case what == "requests" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"requests": s.Requests()})
	case what == "reset" && r.Method == http.MethodPost:
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	case what == "config" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, redacted(s.Config()))
	case what == "config" && (r.Method == http.MethodPut || r.Method == http.MethodPatch):
		s.mu.Lock()
		next := s.cfg
		if r.Method == http.MethodPut {
			next = Config{}
		}
		err := decode(r, &next)
		if next.Token == "[redacted]" { // a dump sent back unchanged keeps the token
			next.Token = s.cfg.Token
		}
		if err == nil {
			s.cfg = next
		}
		s.mu.Unlock()
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, redacted(next))
	case what == "users" && id == "" && r.Method == http.MethodGet:
		// A cheap probe for benchmarks that wait for one user to show on the site.
		s.mu.Lock()
		var u User
		p := s.store.byUserName(r.URL.Query().Get("userName"))
		if p != nil {
			u = *p
		}
		s.mu.Unlock()
		if p == nil {
			writeError(w, http.StatusNotFound, "Could not find user "+r.URL.Query().Get("userName"))
			return
		}
		writeJSON(w, http.StatusOK, u)
	case what == "users" && id == "" && r.Method == http.MethodPost:
		var u User
		if err := decode(r, &u); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if u.UserName == "" {
			writeError(w, http.StatusBadRequest, "userName is required")
			return
		}
		writeJSON(w, http.StatusCreated, s.Seed(u))
	case what == "users" && id != "":
		s.adminUser(w, r, id)
	default:
		writeError(w, http.StatusNotFound, "unknown simulator endpoint")
	}
}

func (s *Sim) adminUser(w http.ResponseWriter, r *http.Request, id string) {
	switch r.Method {
	case http.MethodGet:
		u, ok := s.User(id)
		if !ok {
			writeError(w, http.StatusNotFound, "Could not find user with id "+id)
			return
		}
		writeJSON(w, http.StatusOK, u)
	case http.MethodPatch:
		var patchErr error
		err := s.Edit(id, func(u *User) {
			// Decoding onto the stored user is a JSON merge: absent keys stay.
			patchErr = json.NewDecoder(r.Body).Decode(u)
			if u.Role == "" {
				u.Role = RoleRegistered
			}
		})
		if err != nil {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		if patchErr != nil {
			writeError(w, http.StatusBadRequest, "The request body is not valid JSON")
			return
		}
		u, _ := s.User(id)
		writeJSON(w, http.StatusOK, u)
	case http.MethodDelete:
		s.mu.Lock()
		_, ok := s.store.users[id]
		delete(s.store.users, id)
		s.mu.Unlock()
		if !ok {
			writeError(w, http.StatusNotFound, "Could not find user with id "+id)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

// redacted hides the token in dumps: it can be set through /_sim/config, never read back.
func redacted(c Config) Config {
	if c.Token != "" {
		c.Token = "[redacted]"
	}
	return c
}
