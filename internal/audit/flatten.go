package audit

import (
	"sort"
	"strconv"
	"strings"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

func sortStrings(s []string) { sort.Strings(s) }

// Flatten renders the audited fields of a StackUser spec as path → value, so two specs
// can be compared with Diff. additionalAttributes are left out: they are opaque.
func Flatten(s *scimv1.StackUserSpec) map[string]string {
	m := map[string]string{
		"userName":          s.UserName,
		"externalId":        s.ExternalID,
		"displayName":       s.DisplayName,
		"title":             s.Title,
		"department":        s.Department,
		"nickName":          s.NickName,
		"locale":            s.Locale,
		"preferredLanguage": s.PreferredLanguage,
		"timezone":          s.Timezone,
		"profileUrl":        s.ProfileURL,
		"active":            strconv.FormatBool(s.Active == nil || *s.Active),
	}
	if s.Role != nil {
		m["role"] = string(*s.Role)
	} else {
		m["role"] = ""
	}
	if n := s.Name; n != nil {
		m["name.givenName"] = n.GivenName
		m["name.familyName"] = n.FamilyName
		m["name.formatted"] = n.Formatted
		m["name.middleName"] = n.MiddleName
		m["name.honorificPrefix"] = n.HonorificPrefix
		m["name.honorificSuffix"] = n.HonorificSuffix
	}
	m["emails"] = multi(s.Emails)
	m["phoneNumbers"] = multi(s.PhoneNumbers)
	if e := s.Enterprise; e != nil {
		m["enterprise.employeeNumber"] = e.EmployeeNumber
		m["enterprise.costCenter"] = e.CostCenter
		m["enterprise.organization"] = e.Organization
		m["enterprise.division"] = e.Division
		if e.Manager != nil {
			m["enterprise.manager"] = e.Manager.Value
		}
	}
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	return m
}

func multi(vs []scimv1.MultiValuedAttribute) string {
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		p := v.Value
		if v.Type != "" {
			p += " (" + v.Type + ")"
		}
		if v.Primary {
			p += " primary"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}
