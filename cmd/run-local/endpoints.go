package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// endpoints is what a developer (or a script) needs to talk to the local setup.
type endpoints struct {
	scimBaseURL, scimToken string
	siteURL, siteToken     string
	siteState              string
	kubeconfig             string
	kubectl                string
	namespace, name        string
}

// write writes shell KEY=value lines, readable by `source` and `set -a; . file`.
func (e endpoints) write(path string) error {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"SCIM_BASE_URL", e.scimBaseURL},
		{"SCIM_TOKEN", e.scimToken},
		{"SITE_SCIM_URL", e.siteURL},
		{"SITE_TOKEN", e.siteToken},
		{"SITE_STATE_URL", e.siteState},
		{"KUBECONFIG", e.kubeconfig},
		{"SETTINGS_NAMESPACE", e.namespace},
		{"SETTINGS_NAME", e.name},
	} {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func (e endpoints) printBanner(w io.Writer, envFile string) {
	fmt.Fprintf(w, `
================================================================================
 stack-scim-operator is running locally.

   SCIM base URL   %s
   site simulator  %s   (state: %s)
   endpoints       %s

 Try it:
   source %s
   curl -s -H "Authorization: Bearer $SCIM_TOKEN" "$SCIM_BASE_URL/Users?count=10"
   %s get scimsettings,stackusers -n $SETTINGS_NAMESPACE -o wide

 Ctrl-C stops everything (the control plane's data is thrown away).
================================================================================
`, e.scimBaseURL, e.siteURL, e.siteState, envFile, envFile, e.kubectl)
}

// shellQuote leaves plain values (URLs, hex tokens, simple paths) bare, so that tools
// that read KEY=value without a shell (docker --env-file, Make) see the same values.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@%+,=-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
