package site

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
)

// Clients keeps one Client per tenant, so that a tenant's rate limit holds across
// reconciles and a changed URL, token or limit takes effect at once.
type Clients struct {
	// Defaults fill in what a tenant's Config leaves unset (retries, back-off, HTTP client).
	Defaults Config

	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	fingerprint string
	client      *Client
}

// For returns the tenant's client for cfg, building a new one when cfg changed.
func (cs *Clients) For(tenant string, cfg Config) (*Client, error) {
	d := cs.Defaults
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = d.MaxRetries
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = d.MinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = d.MaxBackoff
	}
	if cfg.MaxRetryAfter == 0 {
		cfg.MaxRetryAfter = d.MaxRetryAfter
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = d.HTTPClient
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = d.UserAgent
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = d.Timeout
	}
	cfg.Tenant = tenant
	// The token is part of the fingerprint only as a hash, so it is not kept twice.
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%v\x00%v\x00%d", cfg.URL, cfg.Token, cfg.Timeout, cfg.RequestsPerSecond, cfg.Burst))
	fp := hex.EncodeToString(sum[:])
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c, ok := cs.m[tenant]; ok && c.fingerprint == fp {
		return c.client, nil
	}
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if cs.m == nil {
		cs.m = map[string]cached{}
	}
	cs.m[tenant] = cached{fingerprint: fp, client: c}
	return c, nil
}

// Forget drops a tenant's client (the tenant was deleted).
func (cs *Clients) Forget(tenant string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.m, tenant)
}
