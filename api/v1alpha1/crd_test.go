package v1alpha1_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m, func(e *testenv.Env) { env = e }))
}

func validUser(ns string) *scimv1.StackUser {
	return &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "u-"},
		Spec: scimv1.StackUserSpec{
			SettingsRef: scimv1.SettingsReference{Name: "okta"},
			UserName:    "Ada.Lovelace@example.com",
			Emails:      []scimv1.MultiValuedAttribute{{Value: "ada@example.com", Type: "work", Primary: true}},
		},
	}
}

func validSettings(ns string) *scimv1.ScimSettings {
	return &scimv1.ScimSettings{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "s-"},
		Spec: scimv1.ScimSettingsSpec{
			BearerTokenSecretRef: scimv1.BearerTokenSecretReference{Name: "scim-token"},
			Site: scimv1.SiteSpec{
				URL:            "https://stack.example.com/api/scim/v2",
				TokenSecretRef: scimv1.SecretKeyReference{Name: "site-token"},
			},
		},
	}
}

func TestStackUser_validationRejectsBadObjects(t *testing.T) {
	ns := env.Namespace(t)
	cases := map[string]struct {
		mutate func(*scimv1.StackUser)
		want   string // part of the API server's message
	}{
		"missing userName": {func(u *scimv1.StackUser) { u.Spec.UserName = "" }, "spec.userName"},
		"unknown role": {func(u *scimv1.StackUser) {
			u.Spec.Role = ptr.To(scimv1.Role("SuperAdmin"))
		}, `Unsupported value: "SuperAdmin"`},
		"lower-case role": {func(u *scimv1.StackUser) {
			u.Spec.Role = ptr.To(scimv1.Role("admin"))
		}, `Unsupported value: "admin"`},
		"missing settingsRef": {func(u *scimv1.StackUser) { u.Spec.SettingsRef.Name = "" }, "spec.settingsRef.name"},
		"two primary emails": {func(u *scimv1.StackUser) {
			u.Spec.Emails = append(u.Spec.Emails, scimv1.MultiValuedAttribute{Value: "b@example.com", Primary: true})
		}, "at most one email may be primary"},
		"email without value": {func(u *scimv1.StackUser) {
			u.Spec.Emails = []scimv1.MultiValuedAttribute{{Type: "work"}}
		}, "spec.emails[0].value"},
		"userName too long": {func(u *scimv1.StackUser) { u.Spec.UserName = strings.Repeat("a", 257) }, "spec.userName"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			u := validUser(ns)
			tc.mutate(u)
			err := env.Client.Create(context.Background(), u)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
		})
	}
}

func TestStackUser_defaultsAndRoundTrip(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	u := validUser(ns)
	u.Spec.AdditionalAttributes = &apiextensionsv1.JSON{Raw: []byte(`{"urn:example:custom":{"costCode":"42","tags":["a"]}}`)}
	g.Expect(env.Client.Create(context.Background(), u)).To(Succeed())

	got := &scimv1.StackUser{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(u), got)).To(Succeed())
	g.Expect(got.Spec.Active).To(Equal(ptr.To(true)), "active defaults to true")
	g.Expect(got.Spec.Role).To(BeNil(), "an absent role stays absent: not managed by the IdP")
	g.Expect(got.Spec.UserName).To(Equal("Ada.Lovelace@example.com"), "userName keeps its case")
	g.Expect(string(got.Spec.AdditionalAttributes.Raw)).To(MatchJSON(`{"urn:example:custom":{"costCode":"42","tags":["a"]}}`),
		"unknown attributes survive pruning")
}

func TestStackUser_statusHistoryIsStored(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	u := validUser(ns)
	g.Expect(env.Client.Create(context.Background(), u)).To(Succeed())
	u.Status.SiteID = "1234"
	u.Status.History = []scimv1.AuditEntry{{
		Time:    metav1.NewTime(time.Now().Truncate(time.Second)),
		Actor:   scimv1.Actor{Kind: scimv1.ActorIdentityProvider, Name: "ns/okta", UserAgent: "Okta SCIM Client 1.0.0"},
		Action:  "RoleChange",
		Changes: []scimv1.FieldChange{{Field: "role", Old: "Registered", New: "Admin"}},
		Result:  scimv1.ResultBlocked,
	}}
	g.Expect(env.Client.Status().Update(context.Background(), u)).To(Succeed())
	got := &scimv1.StackUser{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(u), got)).To(Succeed())
	g.Expect(got.Status.History).To(HaveLen(1))
	g.Expect(got.Status.History[0].Changes[0].New).To(Equal("Admin"))

	got.Status.History[0].Result = "Maybe"
	err := env.Client.Status().Update(context.Background(), got)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "an unknown audit result is rejected, got %v", err)
}

func TestScimSettings_validationRejectsBadObjects(t *testing.T) {
	ns := env.Namespace(t)
	cases := map[string]struct {
		mutate func(*scimv1.ScimSettings)
		want   string
	}{
		"missing site url":      {func(s *scimv1.ScimSettings) { s.Spec.Site.URL = "" }, "spec.site.url"},
		"site url not http":     {func(s *scimv1.ScimSettings) { s.Spec.Site.URL = "ftp://stack.example.com" }, "url must be an http:// or https:// URL"},
		"missing token secret":  {func(s *scimv1.ScimSettings) { s.Spec.BearerTokenSecretRef.Name = "" }, "spec.bearerTokenSecretRef.name"},
		"missing site token":    {func(s *scimv1.ScimSettings) { s.Spec.Site.TokenSecretRef.Name = "" }, "spec.site.tokenSecretRef.name"},
		"unknown drift policy":  {func(s *scimv1.ScimSettings) { s.Spec.DriftPolicy = "Ignore" }, `Unsupported value: "Ignore"`},
		"unknown deletion":      {func(s *scimv1.ScimSettings) { s.Spec.DeletionPolicy = "Purge" }, `Unsupported value: "Purge"`},
		"history limit too big": {func(s *scimv1.ScimSettings) { s.Spec.HistoryLimit = 5000 }, "spec.historyLimit"},
		"negative rate":         {func(s *scimv1.ScimSettings) { s.Spec.Site.RequestsPerSecond = -1 }, "spec.site.requestsPerSecond"},
		"base path with space":  {func(s *scimv1.ScimSettings) { s.Spec.BasePath = "/scim/my tenant" }, "spec.basePath"},
		"base path relative":    {func(s *scimv1.ScimSettings) { s.Spec.BasePath = "scim/v2" }, "spec.basePath"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			s := validSettings(ns)
			tc.mutate(s)
			err := env.Client.Create(context.Background(), s)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
		})
	}
}

func TestScimSettings_defaultsApply(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	s := validSettings(ns)
	g.Expect(env.Client.Create(context.Background(), s)).To(Succeed())
	got := &scimv1.ScimSettings{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(s), got)).To(Succeed())

	g.Expect(got.Spec.Enabled).To(Equal(ptr.To(true)))
	g.Expect(got.Spec.AllowModeratorPromotion).To(BeFalse(), "promotion is off until an admin turns it on")
	g.Expect(got.Spec.AllowAdminPromotion).To(BeFalse())
	g.Expect(got.Spec.BearerTokenSecretRef.Key).To(Equal("token"))
	g.Expect(got.Spec.BearerTokenSecretRef.NextKey).To(BeEmpty())
	g.Expect(got.Spec.Site.TokenSecretRef.Key).To(Equal("token"))
	g.Expect(got.Spec.Site.Timeout.Duration).To(Equal(30 * time.Second))
	g.Expect(got.Spec.Site.RequestsPerSecond).To(Equal(int32(25)))
	g.Expect(got.Spec.Site.Burst).To(Equal(int32(50)))
	g.Expect(got.Spec.Site.CreateUsers).To(Equal(ptr.To(true)))
	g.Expect(got.Spec.DriftPolicy).To(Equal(scimv1.DriftEnforce))
	g.Expect(got.Spec.DeletionPolicy).To(Equal(scimv1.DeletionDeactivate))
	g.Expect(got.Spec.ResyncPeriod.Duration).To(Equal(10 * time.Minute))
	g.Expect(got.Spec.HistoryLimit).To(Equal(int32(20)))
	g.Expect(got.EffectiveBasePath()).To(Equal("/scim/v2/" + ns + "/" + got.Name))
}

func crd(t *testing.T, name string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	c := &apiextensionsv1.CustomResourceDefinition{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Name: name}, c); err != nil {
		t.Fatalf("reading CRD %s: %v", name, err)
	}
	return c
}

func TestCRDs_printerColumnsAndShortNames(t *testing.T) {
	cases := map[string]struct {
		columns    []string
		shortNames []string
	}{
		"stackusers.scim.stackscim.io":   {[]string{"User Name", "Active", "Role", "Synced", "Reason", "Planned", "Site ID", "Settings", "Age"}, []string{"su", "stackuser"}},
		"scimsettings.scim.stackscim.io": {[]string{"Enabled", "Mode", "Ready", "Users", "Backlog", "Planned", "Held", "Endpoint", "URL", "Age"}, []string{"scims"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			c := crd(t, name)
			g.Expect(c.Spec.Scope).To(Equal(apiextensionsv1.NamespaceScoped))
			g.Expect(c.Spec.Names.ShortNames).To(ConsistOf(tc.shortNames))
			g.Expect(c.Spec.Names.Categories).To(ContainElement("scim"))
			var cols []string
			for _, col := range c.Spec.Versions[0].AdditionalPrinterColumns {
				cols = append(cols, col.Name)
			}
			g.Expect(cols).To(Equal(tc.columns))
		})
	}
}

// TestCRDs_printerColumnsRender checks the columns through the API server's table
// rendering, which is what `kubectl get` shows.
func TestCRDs_printerColumnsRender(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	u := validUser(ns)
	u.Spec.Role = ptr.To(scimv1.RoleModerator)
	g.Expect(env.Client.Create(context.Background(), u)).To(Succeed())

	table := &metav1.Table{}
	rc := restClient(t)
	err := rc.Get().AbsPath("/apis/scim.stackscim.io/v1alpha1/namespaces", ns, "stackusers").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").Do(context.Background()).Into(table)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(table.Rows).To(HaveLen(1))
	g.Expect(table.Rows[0].Cells[0]).To(Equal(u.Name))
	g.Expect(table.Rows[0].Cells[1]).To(Equal("Ada.Lovelace@example.com"))
	g.Expect(table.Rows[0].Cells[2]).To(BeTrue())
	g.Expect(table.Rows[0].Cells[3]).To(Equal("Moderator"))
}

// TestCRDs_everyFieldIsDocumented keeps `kubectl explain` useful: every property in both
// CRD schemas carries a description.
func TestCRDs_everyFieldIsDocumented(t *testing.T) {
	for _, name := range []string{"stackusers.scim.stackscim.io", "scimsettings.scim.stackscim.io"} {
		t.Run(name, func(t *testing.T) {
			c := crd(t, name)
			var missing []string
			var walk func(path string, p apiextensionsv1.JSONSchemaProps)
			walk = func(path string, p apiextensionsv1.JSONSchemaProps) {
				for k, child := range p.Properties {
					cp := path + "." + k
					// controller-gen reduces the root metadata to {type: object}; kubectl explain
					// documents it from ObjectMeta.
					if child.Description == "" && cp != ".apiVersion" && cp != ".kind" && cp != ".metadata" {
						missing = append(missing, cp)
					}
					walk(cp, child)
				}
				if p.Items != nil && p.Items.Schema != nil {
					walk(path+"[]", *p.Items.Schema)
				}
			}
			walk("", *c.Spec.Versions[0].Schema.OpenAPIV3Schema)
			if len(missing) > 0 {
				t.Errorf("fields without a description: %s", strings.Join(missing, ", "))
			}
		})
	}
}
