package site

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Version is the operator version sent in the User-Agent; set with -ldflags
// "-X github.com/stackscim/stack-scim-operator/internal/site.Version=v1.2.3".
var Version = "dev"

// PageSize is the most users the site returns per page.
const PageSize = 100

// maxBody bounds what is read of one answer.
const maxBody = 8 << 20

// Config says how to reach one site.
type Config struct {
	// URL is the SCIM base URL, e.g. https://stack.example.com/api/scim/v2.
	URL string
	// Token is the bearer token typed into the site's SCIM settings page.
	Token string
	// Timeout bounds each attempt of a request (default 30s).
	Timeout time.Duration
	// RequestsPerSecond and Burst rate-limit this client (defaults 25 and 50: the site's
	// documented REST API limit, bursts of 50 requests per 2 s).
	RequestsPerSecond float64
	Burst             int
	// UserAgent defaults to stack-scim-operator/<Version>.
	UserAgent string
	// MaxRetries bounds the retries of one request after 429, 5xx or a timeout (default 4).
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential back-off between retries
	// (defaults 200ms and 10s).
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After waited for in place (default 30s); a longer
	// one is returned to the caller as an error carrying it.
	MaxRetryAfter time.Duration
	// ReadBackCreate reads a user created with a role back with a GET even when the
	// create's answer carries the user. Off by default: the site answers a create with the
	// user as stored (RFC 7644 §3.3), so a role it ignored shows there already.
	ReadBackCreate bool
	// HTTPClient sends the requests (default: a client with sane transport timeouts).
	HTTPClient *http.Client
	// Tenant labels this client's metrics (namespace/name); Clients sets it.
	Tenant string
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.RequestsPerSecond <= 0 {
		c.RequestsPerSecond = 25
	}
	if c.Burst <= 0 {
		c.Burst = 50
	}
	if c.UserAgent == "" {
		c.UserAgent = "stack-scim-operator/" + Version
	}
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	} else if c.MaxRetries == 0 {
		c.MaxRetries = 4
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 200 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = 30 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = defaultHTTPClient
	}
	return c
}

var defaultHTTPClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	},
	// The site never redirects a SCIM call; following one could send the token elsewhere.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// filter support as learned from the site.
const (
	filterUnknown int32 = iota
	filterSupported
	filterUnsupported
)

// Client talks to one site. It is safe for concurrent use; its rate limit is shared by all
// callers, so one Client per tenant.
type Client struct {
	cfg     Config
	base    string // URL without trailing slash
	limiter *rate.Limiter
	filter  atomic.Int32
	// orFilter is whether the site takes `a eq "x" or b eq "y"`, learned like filter.
	orFilter atomic.Int32
	// pausedUntil (unix nanoseconds) holds every request of this client after a 429 with
	// Retry-After: the site throttles the token, not one caller.
	pausedUntil atomic.Int64
}

// New builds a client.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("site url %q is not an http(s) URL", redactURL(cfg.URL))
	}
	if cfg.Token == "" {
		return nil, errors.New("site token is empty")
	}
	return &Client{
		cfg:     cfg,
		base:    strings.TrimRight(cfg.URL, "/"),
		limiter: rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), cfg.Burst),
	}, nil
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}

// Get reads one user by its site id.
func (c *Client) Get(ctx context.Context, id string) (*User, error) {
	var w WireUser
	if err := c.do(ctx, http.MethodGet, "/users/"+url.PathEscape(id), nil, nil, &w); err != nil {
		return nil, err
	}
	u := FromWire(w)
	return &u, nil
}

// Page is one page of a user listing.
type Page struct {
	Users        []User
	TotalResults int
}

// List reads one page of users; startIndex is 1-based, count at most PageSize.
func (c *Client) List(ctx context.Context, startIndex, count int) (Page, error) {
	return c.list(ctx, startIndex, count, "")
}

func (c *Client) list(ctx context.Context, startIndex, count int, filter string) (Page, error) {
	if count <= 0 || count > PageSize {
		count = PageSize
	}
	q := url.Values{}
	q.Set("startIndex", strconv.Itoa(max(startIndex, 1)))
	q.Set("count", strconv.Itoa(count))
	if filter != "" {
		q.Set("filter", filter)
	}
	var l WireList
	if err := c.do(ctx, http.MethodGet, "/users", q, nil, &l); err != nil {
		return Page{}, err
	}
	p := Page{TotalResults: l.TotalResults, Users: make([]User, 0, len(l.Resources))}
	for _, w := range l.Resources {
		p.Users = append(p.Users, FromWire(w))
	}
	return p, nil
}

// ErrNotSCIM means the site answered 200 but not with a SCIM ListResponse: the URL is
// not the site's SCIM endpoint (check the /api/scim/v2 suffix).
var ErrNotSCIM = errors.New("the answer is not a SCIM ListResponse; check the site URL")

// Probe checks the URL and token the way Okta's "Test API Credentials" does: it lists
// one user and returns the site's user count. An answer that is not a SCIM list is
// ErrNotSCIM; other failures are the usual *Error and *TransportError.
func (c *Client) Probe(ctx context.Context) (int, error) {
	q := url.Values{"startIndex": {"1"}, "count": {"1"}}
	var l struct {
		TotalResults *int `json:"totalResults"`
	}
	if err := c.do(ctx, http.MethodGet, "/users", q, nil, &l); err != nil {
		var e *Error
		if errors.As(err, &e) && e.StatusCode == http.StatusOK {
			return 0, ErrNotSCIM
		}
		return 0, err
	}
	if l.TotalResults == nil {
		return 0, ErrNotSCIM
	}
	return *l.TotalResults, nil
}

// ErrStop ends a ListAll early without an error.
var ErrStop = errors.New("stop listing")

// ListAll reads every user in pages of PageSize, handing each page to fn.
func (c *Client) ListAll(ctx context.Context, fn func([]User) error) error {
	start := 1
	for range 1_000_000 { // a bound in case the site's totals never add up
		p, err := c.list(ctx, start, PageSize, "")
		if err != nil {
			return err
		}
		if len(p.Users) > 0 {
			if err := fn(p.Users); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
		}
		start += len(p.Users)
		if len(p.Users) == 0 || start > p.TotalResults {
			return nil
		}
	}
	return nil
}

// FindByExternalID looks a user up by the IdP's id; nil when there is none.
func (c *Client) FindByExternalID(ctx context.Context, externalID string) (*User, error) {
	return c.find(ctx, "externalId", externalID, func(u *User) bool { return u.ExternalID == externalID })
}

// FindByUserName looks a user up by user name (case-insensitive); nil when there is none.
func (c *Client) FindByUserName(ctx context.Context, userName string) (*User, error) {
	return c.find(ctx, "userName", userName, func(u *User) bool { return strings.EqualFold(u.UserName, userName) })
}

// Lookup finds the site user of an IdP user: the one with externalID, else the one with
// userName (case-insensitive); how names the attribute that matched, and the user is nil
// when there is none. One request where the site takes an `or` filter; otherwise the two
// lookups of FindByExternalID and FindByUserName (what the site takes is learned once).
func (c *Client) Lookup(ctx context.Context, externalID, userName string) (u *User, how string, err error) {
	if externalID == "" {
		u, err = c.FindByUserName(ctx, userName)
		return u, "userName", err
	}
	byExt := func(u *User) bool { return u.ExternalID == externalID }
	byName := func(u *User) bool { return userName != "" && strings.EqualFold(u.UserName, userName) }
	pick := func(users []User) (*User, string) {
		var named *User
		for i := range users {
			if byExt(&users[i]) {
				return &users[i], "externalId"
			}
			if named == nil && byName(&users[i]) {
				named = &users[i]
			}
		}
		if named != nil {
			return named, "userName"
		}
		return nil, ""
	}
	switch {
	case userName == "":
		u, err = c.FindByExternalID(ctx, externalID)
		return u, "externalId", err
	case c.filter.Load() == filterUnsupported:
		// One pass over the listing instead of one per attribute.
		var all []User
		err := c.ListAll(ctx, func(users []User) error {
			for i := range users {
				if byExt(&users[i]) {
					all = []User{users[i]}
					return ErrStop
				}
				if byName(&users[i]) && len(all) == 0 {
					all = append(all, users[i])
				}
			}
			return nil
		})
		u, how = pick(all)
		return u, how, err
	case c.orFilter.Load() != filterUnsupported:
		expr := fmt.Sprintf("externalId eq %s or userName eq %s", strconv.Quote(externalID), strconv.Quote(userName))
		p, err := c.list(ctx, 1, PageSize, expr)
		switch code := StatusCode(err); {
		case err == nil:
			if !slices.ContainsFunc(p.Users, func(u User) bool { return !byExt(&u) && !byName(&u) }) {
				c.orFilter.Store(filterSupported)
				c.filter.Store(filterSupported)
				u, how = pick(p.Users)
				return u, how, nil
			}
			// Answered with users that match neither: the site ignores this filter.
			c.orFilter.Store(filterUnsupported)
		case code == http.StatusBadRequest || code == http.StatusNotImplemented || code == http.StatusForbidden:
			c.orFilter.Store(filterUnsupported)
		default:
			return nil, "", err
		}
	}
	if u, err = c.FindByExternalID(ctx, externalID); err != nil || u != nil {
		return u, "externalId", err
	}
	u, err = c.FindByUserName(ctx, userName)
	return u, "userName", err
}

// find filters on the site when it can, and lists every user otherwise: filter support is
// not documented, so a 400/501 (or a filter the site ignores) switches this client to
// listing for good.
func (c *Client) find(ctx context.Context, attr, value string, match func(*User) bool) (*User, error) {
	if value == "" {
		return nil, nil
	}
	if c.filter.Load() != filterUnsupported {
		expr := fmt.Sprintf("%s eq %s", attr, strconv.Quote(value))
		p, err := c.list(ctx, 1, PageSize, expr)
		switch code := StatusCode(err); {
		case err == nil:
			var found *User
			ignored := false
			for i := range p.Users {
				if !match(&p.Users[i]) {
					ignored = true
				} else if found == nil {
					found = &p.Users[i]
				}
			}
			if !ignored {
				c.filter.Store(filterSupported)
				return found, nil
			}
			c.filter.Store(filterUnsupported)
		case code == http.StatusBadRequest || code == http.StatusNotImplemented || code == http.StatusForbidden:
			c.filter.Store(filterUnsupported)
		default:
			return nil, err
		}
	}
	var found *User
	err := c.ListAll(ctx, func(users []User) error {
		for i := range users {
			if match(&users[i]) {
				u := users[i]
				found = &u
				return ErrStop
			}
		}
		return nil
	})
	return found, err
}

// Create creates a user. A site that cannot create users answers 404, 405 or 501: that
// becomes ErrCreateUnsupported. The site may ignore the role of a create: the answer shows
// the user as stored, and a user created with a role is read back with a GET only when the
// answer does not carry the user (or Config.ReadBackCreate asks for it).
func (c *Client) Create(ctx context.Context, u User) (*User, error) {
	var w WireUser
	err := c.do(ctx, http.MethodPost, "/users", nil, u.ToWire(), &w)
	switch StatusCode(err) {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		// Only ErrCreateUnsupported is wrapped: the site's 404 is not a missing user here.
		return nil, fmt.Errorf("%w (%s)", ErrCreateUnsupported, err.Error())
	}
	if err != nil {
		return nil, err
	}
	if w.ID == "" {
		return nil, &Error{Method: http.MethodPost, Path: "/users", StatusCode: http.StatusOK, Message: "created user has no id"}
	}
	if u.ToWire().UserType != "" && (c.cfg.ReadBackCreate || w.UserName == "") {
		return c.Get(ctx, w.ID)
	}
	created := FromWire(w)
	return &created, nil
}

// Patch applies ops to a user and returns the user as the site then shows it. A role
// write is always read back with a GET: the site answers 200 even when it ignores it.
func (c *Client) Patch(ctx context.Context, id string, ops []PatchOp) (*User, error) {
	if len(ops) == 0 {
		return c.Get(ctx, id)
	}
	body := PatchRequest{Schemas: []string{SchemaPatchOp}, Operations: ops}
	var w WireUser
	if err := c.do(ctx, http.MethodPatch, "/users/"+url.PathEscape(id), nil, body, &w); err != nil {
		return nil, err
	}
	if w.ID == "" || HasPath(ops, PathUserType) {
		return c.Get(ctx, id)
	}
	u := FromWire(w)
	return &u, nil
}

// Delete permanently deletes a user. The site answers 404 both for an unknown user and
// when deletion is disabled; callers tell them apart with a Get.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/users/"+url.PathEscape(id), nil, nil, nil)
}

// do sends one request with rate limiting and bounded retries, decoding a 2xx body into
// out. GET, PATCH and DELETE are retried after 429, 5xx and timeouts; POST only after 429
// (the site did not process it), so a create is never sent twice.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, path, q, payload, out)
		if err == nil {
			return nil
		}
		wait, retry := c.retryable(method, err, attempt)
		if !retry {
			return err
		}
		if StatusCode(err) == http.StatusTooManyRequests {
			c.pause(wait)
		}
		retriesTotal.WithLabelValues(c.cfg.Tenant, method).Inc()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (c *Client) retryable(method string, err error, attempt int) (time.Duration, bool) {
	if attempt >= c.cfg.MaxRetries {
		return 0, false
	}
	backoff := min(c.cfg.MinBackoff<<attempt, c.cfg.MaxBackoff)
	backoff = backoff/2 + rand.N(backoff/2+1) // jitter, so tenants do not retry in step
	var te *TransportError
	if errors.As(err, &te) {
		if errors.Is(err, context.Canceled) {
			return 0, false
		}
		return backoff, method != http.MethodPost
	}
	var se *Error
	if !errors.As(err, &se) {
		return 0, false
	}
	switch {
	case se.StatusCode == http.StatusTooManyRequests:
		if se.RetryAfter > c.cfg.MaxRetryAfter {
			return 0, false
		}
		return max(se.RetryAfter, backoff), true
	case method == http.MethodPost:
		return 0, false
	case se.StatusCode == http.StatusBadGateway || se.StatusCode == http.StatusServiceUnavailable || se.StatusCode == http.StatusGatewayTimeout:
		if se.RetryAfter > c.cfg.MaxRetryAfter {
			return 0, false
		}
		return max(se.RetryAfter, backoff), true
	case se.StatusCode >= 500 && se.StatusCode != http.StatusNotImplemented && method == http.MethodGet:
		// A 500 to a write usually describes the write ("unknown user"); to a read it is
		// more likely transient.
		return backoff, true
	}
	return 0, false
}

// pause holds this client's requests for d (unless already held longer).
func (c *Client) pause(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := c.pausedUntil.Load()
		if cur >= until || c.pausedUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

func (c *Client) once(ctx context.Context, method, path string, q url.Values, payload []byte, out any) error {
	if d := time.Until(time.Unix(0, c.pausedUntil.Load())); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return &TransportError{Method: method, Path: path, Err: ctx.Err()}
		case <-t.C:
		}
	}
	if err := c.limiter.Wait(ctx); err != nil {
		return &TransportError{Method: method, Path: path, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var rdr io.Reader
	if payload != nil {
		rdr = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rdr)
	if err != nil {
		return &TransportError{Method: method, Path: path, Err: errors.New("building request failed")}
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("Accept", "application/scim+json, application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if rdr != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	start := time.Now()
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		c.observe(method, start, err)
		// *url.Error repeats the URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &TransportError{Method: method, Path: path, Err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		c.observe(method, start, err)
		return &TransportError{Method: method, Path: path, Err: fmt.Errorf("reading answer: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		c.observe(method, start, &Error{StatusCode: resp.StatusCode})
		return &Error{
			Method:     method,
			Path:       path,
			StatusCode: resp.StatusCode,
			Message:    c.scrub(parseErrorMessage(data)),
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After")),
		}
	}
	c.observe(method, start, nil)
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &Error{Method: method, Path: path, StatusCode: resp.StatusCode, Message: "answer is not valid JSON: " + err.Error()}
	}
	return nil
}

// scrub removes the token from a message the site echoed back, however unlikely.
func (c *Client) scrub(msg string) string {
	if c.cfg.Token != "" && strings.Contains(msg, c.cfg.Token) {
		return strings.ReplaceAll(msg, c.cfg.Token, "[redacted]")
	}
	return msg
}

func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
