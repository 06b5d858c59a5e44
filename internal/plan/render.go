package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// maxNameColumn caps the userName column, so one long name does not push every detail
// off the screen.
const maxNameColumn = 40

// maxListed is how many names a text line lists before "and N more".
const maxListed = 10

// labels are the action column: a Terraform-like sign and the action in lower case.
var labels = map[scimv1.PlanAction]string{
	scimv1.PlanLink:       "~ link",
	scimv1.PlanCreate:     "+ create",
	scimv1.PlanUpdate:     "~ update",
	scimv1.PlanActivate:   "+ activate",
	scimv1.PlanDeactivate: "- deactivate",
	scimv1.PlanPromote:    "↑ promote",
	scimv1.PlanDemote:     "↓ demote",
}

// JSON writes the plan as indented JSON, the typed Plan as is.
func JSON(w io.Writer, p *Plan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Text writes the plan for people, one block per tenant, with no colour codes. Every
// value that came from an identity provider or the site is quoted when it holds
// characters that are not printable, so it cannot drive the terminal.
func Text(w io.Writer, p *Plan) error {
	var b strings.Builder
	for i := range p.Tenants {
		if i > 0 {
			b.WriteByte('\n')
		}
		writeTenant(&b, &p.Tenants[i])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeTenant(b *strings.Builder, t *Tenant) {
	fmt.Fprintf(b, "Tenant %s/%s  (mode %s, site %s)\n", t.Namespace, t.Name, t.Mode, safe(t.SiteURL))
	width := 0
	for _, c := range t.Changes {
		width = max(width, min(utf8.RuneCountInString(safe(c.UserName)), maxNameColumn))
	}
	for _, c := range t.Changes {
		label, ok := labels[c.Action]
		if !ok {
			label = "? " + strings.ToLower(safe(string(c.Action)))
		}
		name := safe(c.UserName)
		line := fmt.Sprintf("  %-12s  %s", label, name)
		if d := details(c); d != "" {
			pad := max(width-utf8.RuneCountInString(name), 0) + 2
			line += strings.Repeat(" ", pad) + d
		}
		b.WriteString(line + "\n")
	}
	if len(t.Changes) == 0 {
		b.WriteString("  No changes.\n")
	}
	parts := make([]string, 0, len(scimv1.PlanActions))
	for _, a := range scimv1.PlanActions {
		parts = append(parts, fmt.Sprintf("%d to %s", t.Counts.Of(a), strings.ToLower(string(a))))
	}
	fmt.Fprintf(b, "Plan: %s; %d held.\n", strings.Join(parts, ", "), t.Counts.Held)
	if t.SiteOnly.Count > 0 {
		names := make([]string, 0, len(t.SiteOnly.Sample))
		for _, s := range t.SiteOnly.Sample {
			n := fmt.Sprintf("%s (id %s", safe(s.UserName), safe(s.ID))
			if !s.Active {
				n += ", inactive"
			}
			names = append(names, n+")")
		}
		noun := "accounts"
		if t.SiteOnly.Count == 1 {
			noun = "account"
		}
		fmt.Fprintf(b, "%d site %s no StackUser describes (left unchanged", t.SiteOnly.Count, noun)
		if t.SiteOnly.AsOf != nil {
			fmt.Fprintf(b, "; found by the resync at %s", t.SiteOnly.AsOf.UTC().Format(time.RFC3339))
		}
		b.WriteString(")")
		if len(names) > 0 {
			b.WriteString(": " + listed(names, t.SiteOnly.Count))
		}
		b.WriteString(".\n")
	}
	if r := t.IncompleteReason(); r != "" {
		b.WriteString("Plan incomplete: " + r + ".\n")
	}
}

// IncompleteReason says why the tenant's plan is incomplete, or "" when it is complete.
func (t *Tenant) IncompleteReason() string {
	var why []string
	if t.SettingsNotEvaluated {
		why = append(why, "the ScimSettings changed since the operator last reconciled it")
	}
	if n := len(t.NotEvaluated); n > 0 {
		names := make([]string, len(t.NotEvaluated))
		for i, u := range t.NotEvaluated {
			names[i] = safe(u)
		}
		noun := "StackUsers"
		if n == 1 {
			noun = "StackUser"
		}
		why = append(why, fmt.Sprintf("%d %s not yet evaluated since their last change: %s", n, noun, listed(names, n)))
	}
	return strings.Join(why, "; ")
}

// details is the text after the userName: what changes, and why it waits.
func details(c Change) string {
	var d []string
	switch {
	case c.Action == scimv1.PlanLink && c.New != "":
		d = append(d, "→ site account "+safe(c.New))
	case c.Action == scimv1.PlanLink, c.Action == scimv1.PlanCreate,
		c.Action == scimv1.PlanActivate, c.Action == scimv1.PlanDeactivate:
		// The action says it all.
	case c.Action == scimv1.PlanPromote, c.Action == scimv1.PlanDemote:
		d = append(d, orNone(c.Old)+" → "+orNone(c.New))
	case c.Field != "" || c.Old != "" || c.New != "":
		v := strconv.Quote(c.Old) + " → " + strconv.Quote(c.New)
		if c.Field != "" {
			v = safe(c.Field) + ": " + v
		}
		d = append(d, v)
	}
	if c.Held {
		h := "(held by the brake"
		if c.HeldSince != nil {
			h += " since " + c.HeldSince.UTC().Format(time.RFC3339)
		}
		d = append(d, h+")")
	}
	if c.Offboarding {
		d = append(d, "(StackUser deleted: offboarding)")
	}
	return strings.Join(d, "  ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return safe(s)
}

// listed joins the first names and says how many of total it left out.
func listed(names []string, total int) string {
	if len(names) > maxListed {
		names = names[:maxListed]
	}
	s := strings.Join(names, ", ")
	if more := total - len(names); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// safe returns s as is when every character is printable, else quoted (escape codes and
// newlines from an identity provider must not reach the terminal raw).
func safe(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	return s
}
