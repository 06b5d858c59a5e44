package v1alpha1

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sjson "sigs.k8s.io/json"

	"github.com/stackscim/stack-scim-operator/internal/clip"
)

// Durations are decoded leniently: an object stored before the schema checked them (for
// example `resyncPeriod: 1d`) would otherwise fail the whole list it is in, and one bad
// tenant would stop the SCIM server and every reconciler for all tenants. The field is
// left unset (its default applies) and the problem is kept in DecodeProblems, which the
// ScimSettings reconciler reports in its Ready condition.

// UnmarshalJSON decodes a SiteSpec, tolerating an undecodable timeout.
func (s *SiteSpec) UnmarshalJSON(b []byte) error {
	type plain SiteSpec
	aux := struct {
		*plain
		Timeout rawField `json:"timeout,omitempty"`
	}{plain: (*plain)(s)}
	if err := k8sjson.UnmarshalCaseSensitivePreserveInts(b, &aux); err != nil {
		return err
	}
	s.DecodeProblems = nil
	s.Timeout = lenientDuration(aux.Timeout, "spec.site.timeout", &s.DecodeProblems)
	return nil
}

// UnmarshalJSON decodes a ScimSettingsSpec, tolerating an undecodable resyncPeriod.
func (s *ScimSettingsSpec) UnmarshalJSON(b []byte) error {
	type plain ScimSettingsSpec
	aux := struct {
		*plain
		ResyncPeriod rawField `json:"resyncPeriod,omitempty"`
	}{plain: (*plain)(s)}
	if err := k8sjson.UnmarshalCaseSensitivePreserveInts(b, &aux); err != nil {
		return err
	}
	s.DecodeProblems = nil
	s.ResyncPeriod = lenientDuration(aux.ResyncPeriod, "spec.resyncPeriod", &s.DecodeProblems)
	return nil
}

// rawField keeps a field's JSON text for a second, lenient decode.
type rawField []byte

func (r *rawField) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

func lenientDuration(raw rawField, field string, problems *[]string) *metav1.Duration {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var d metav1.Duration
	if err := d.UnmarshalJSON(raw); err != nil {
		*problems = append(*problems, fmt.Sprintf("%s %s is not a duration such as 30s, 10m or 24h (%v); its default applies",
			field, clip.String(strings.TrimSpace(string(raw)), 64), err))
		return nil
	}
	return &d
}

// SpecProblems lists the fields of the spec that could not be decoded.
func (s *ScimSettings) SpecProblems() []string {
	return append(append([]string(nil), s.Spec.DecodeProblems...), s.Spec.Site.DecodeProblems...)
}
