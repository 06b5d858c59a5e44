package site_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/stackscim/stack-scim-operator/internal/site"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// A site's ErrorMessage went unclipped into StackUser conditions, whose messages the API
// server caps at 32 KiB: a page-sized error then failed every status write.
func TestClient_siteErrorMessageIsClipped(t *testing.T) {
	g := NewWithT(t)
	huge := strings.Repeat("ünavailable\x07 ", 8000) // ~100 KiB, with a control character
	_, c := newSite(t, sitesim.Config{}, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"ErrorMessage": huge})
		})
	}, site.Config{MaxRetries: 1})
	_, err := c.Get(context.Background(), "42")
	g.Expect(err).To(HaveOccurred())
	g.Expect(site.StatusCode(err)).To(Equal(http.StatusBadRequest))
	g.Expect(len(err.Error())).To(BeNumerically("<=", site.MaxErrorMessage+100))
	g.Expect(err.Error()).To(ContainSubstring("ünavailable"))
	g.Expect(err.Error()).NotTo(ContainSubstring("\x07"))
}
