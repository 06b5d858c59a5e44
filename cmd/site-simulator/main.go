// Command site-simulator serves a simulated Stack Internal Enterprise SCIM API (see
// internal/sitesim) for local runs, end-to-end tests and benchmarks. Every flag can also be
// set with an environment variable (shown in -help); flags win.
//
// The SCIM base URL is http://<addr>/api/scim/v2; /_sim/state dumps users and request
// counters, /_sim/config flips switches at runtime, /_sim/users/{id} edits a user by hand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "site-simulator:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg   sitesim.Config
		addr  string
		seed  int
		lat   time.Duration
		ready string
	)
	fs := flag.CommandLine
	fs.StringVar(&addr, "addr", env("SITESIM_ADDR", "127.0.0.1:8099"), "Listen address [SITESIM_ADDR].")
	fs.StringVar(&cfg.Token, "token", env("SITESIM_TOKEN", ""), "Bearer token the site expects; empty accepts any [SITESIM_TOKEN].")
	fs.BoolVar(&cfg.AllowModeratorPromotion, "allow-moderator-promotion", envBool("SITESIM_ALLOW_MODERATOR_PROMOTION", true), "The site's \"Allow Moderator Promotion\" switch [SITESIM_ALLOW_MODERATOR_PROMOTION].")
	fs.BoolVar(&cfg.AllowAdminPromotion, "allow-admin-promotion", envBool("SITESIM_ALLOW_ADMIN_PROMOTION", true), "The site's \"Allow Admin Promotion\" switch [SITESIM_ALLOW_ADMIN_PROMOTION].")
	fs.BoolVar(&cfg.CreateUsers, "create-users", envBool("SITESIM_CREATE_USERS", true), "Support POST /users (newer site versions) [SITESIM_CREATE_USERS].")
	fs.BoolVar(&cfg.DeleteUsers, "delete-users", envBool("SITESIM_DELETE_USERS", false), "Support DELETE /users/{id} (enabled by vendor support) [SITESIM_DELETE_USERS].")
	fs.BoolVar(&cfg.FilterUnsupported, "filter-unsupported", envBool("SITESIM_FILTER_UNSUPPORTED", false), "Answer ?filter= with an error [SITESIM_FILTER_UNSUPPORTED].")
	fs.DurationVar(&lat, "latency", envDuration("SITESIM_LATENCY", 0), "Latency added to every SCIM call [SITESIM_LATENCY].")
	fs.Float64Var(&cfg.ThrottleRate, "throttle-rate", envFloat("SITESIM_THROTTLE_RATE", 0), "Fraction of calls answered 429 [SITESIM_THROTTLE_RATE].")
	fs.IntVar(&cfg.RetryAfterSeconds, "retry-after", envInt("SITESIM_RETRY_AFTER", 1), "Retry-After seconds of a 429 [SITESIM_RETRY_AFTER].")
	fs.Float64Var(&cfg.ServerErrorRate, "server-error-rate", envFloat("SITESIM_SERVER_ERROR_RATE", 0), "Fraction of calls answered 5xx [SITESIM_SERVER_ERROR_RATE].")
	fs.IntVar(&cfg.ServerErrorStatus, "server-error-status", envInt("SITESIM_SERVER_ERROR_STATUS", 503), "Status of an injected server error [SITESIM_SERVER_ERROR_STATUS].")
	fs.StringVar(&cfg.ExternalURL, "external-url", env("SITESIM_EXTERNAL_URL", ""), "Public URL used in profileUrl and meta.location [SITESIM_EXTERNAL_URL].")
	fs.IntVar(&seed, "seed-users", envInt("SITESIM_SEED_USERS", 0), "Users present at start, as if they had signed in [SITESIM_SEED_USERS].")
	fs.StringVar(&ready, "ready-file", env("SITESIM_READY_FILE", ""), "Write the SCIM base URL to this file once listening [SITESIM_READY_FILE].")
	flag.Parse()
	cfg.Latency = sitesim.Duration(lat)

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	sim := sitesim.New(cfg)
	sim.SeedExamples(seed)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String() + sitesim.BasePath
	if ready != "" {
		if err := os.WriteFile(ready, []byte(base+"\n"), 0o644); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("site simulator listening", "scimBaseURL", base, "stateURL", "http://"+ln.Addr().String()+"/_sim/state",
		"createUsers", cfg.CreateUsers, "deleteUsers", cfg.DeleteUsers,
		"allowModeratorPromotion", cfg.AllowModeratorPromotion, "allowAdminPromotion", cfg.AllowAdminPromotion)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envBool(name string, def bool) bool {
	if v, err := strconv.ParseBool(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
