package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// site is the in-process site simulator.
type site struct {
	srv      *http.Server
	scimURL  string
	stateURL string
}

// startSite serves the simulator on addr, with both promotion switches on and user
// creation supported, and seeds users as if they had signed in over SAML.
func startSite(addr, token string, seed int) (*site, error) {
	sim := sitesim.New(sitesim.Config{
		Token:                   token,
		AllowModeratorPromotion: true,
		AllowAdminPromotion:     true,
		CreateUsers:             true,
	})
	sim.SeedExamples(seed)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("site simulator: %w (is another run-local running? use -site-addr)", err)
	}
	s := &site{
		srv:      &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second},
		scimURL:  "http://" + ln.Addr().String() + sitesim.BasePath,
		stateURL: "http://" + ln.Addr().String() + "/_sim/state",
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "run-local: site simulator:", err)
		}
	}()
	return s, nil
}

func (s *site) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// randomToken is a 256-bit hex token.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
