package tenant_test

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/site"
	"github.com/stackscim/stack-scim-operator/internal/tenant"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m, func(e *testenv.Env) { env = e }))
}

// Every reader of a token trims it the same way: a Secret made with
// `kubectl create secret --from-file` ends in a newline.
func TestLoad_tokensAreTrimmedTheSameWayEverywhere(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	tn := env.Tenant(t, testenv.TenantOptions{BearerToken: "idp\n", SiteToken: "  site\r\n"})
	site, err := tenant.SiteToken(ctx, env.Client, tn.Settings)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(site).To(Equal("site"))
	bearer, next, err := tenant.BearerTokens(ctx, env.Client, tn.Settings)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(next).To(BeNil())
	g.Expect(bearer).To(Equal([]string{"idp"}))
}

func TestLoad_problemsAreTypedAndNameNoToken(t *testing.T) {
	ctx := context.Background()
	cases := map[string]struct {
		secret map[string][]byte // nil: no Secret
		want   tenant.Problem
	}{
		"no Secret":   {want: tenant.SecretNotFound},
		"no key":      {secret: map[string][]byte{"other": []byte("x")}, want: tenant.SecretKeyMissing},
		"blank token": {secret: map[string][]byte{"token": []byte(" \n")}, want: tenant.TokenEmpty},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			tn := env.Tenant(t, testenv.TenantOptions{SiteToken: "secret-value"})
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tn.Namespace, Name: testenv.SiteTokenSecret}}
			g.Expect(env.Client.Delete(ctx, s)).To(Succeed())
			if tc.secret != nil {
				s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tn.Namespace, Name: testenv.SiteTokenSecret}, Data: tc.secret}
				g.Expect(env.Client.Create(ctx, s)).To(Succeed())
			}
			loaded, err := tenant.Load(ctx, env.Client, &site.Clients{}, tn.Key())
			te, ok := tenant.AsError(err)
			g.Expect(ok).To(BeTrue(), "%v", err)
			g.Expect(te.Problem).To(Equal(tc.want))
			g.Expect(te.Message).To(ContainSubstring(testenv.SiteTokenSecret))
			g.Expect(loaded.Settings).NotTo(BeNil(), "the settings come back for the deletion policy")
			g.Expect(loaded.Site).To(BeNil())
		})
	}
	t.Run("no ScimSettings", func(t *testing.T) {
		g := NewWithT(t)
		_, err := tenant.Load(ctx, env.Client, &site.Clients{}, types.NamespacedName{Namespace: env.Namespace(t), Name: "none"})
		te, ok := tenant.AsError(err)
		g.Expect(ok).To(BeTrue())
		g.Expect(te.Problem).To(Equal(tenant.SettingsNotFound))
		g.Expect(te.Gone()).To(BeTrue())
	})
}

func TestOwner_olderClaimWinsWhateverTheOrder(t *testing.T) {
	g := NewWithT(t)
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	mk := func(ns, name string, created metav1.Time, deleting bool) scimv1.ScimSettings {
		s := scimv1.ScimSettings{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: created}}
		if deleting {
			s.DeletionTimestamp = &created
		}
		return s
	}
	later := metav1.NewTime(t0.Add(time.Minute))
	claimants := []scimv1.ScimSettings{mk("b", "x", later, false), mk("a", "gone", metav1.NewTime(t0.Add(-time.Hour)), true),
		mk("c", "y", t0, false), mk("a", "z", t0, false)}
	g.Expect(tenant.Owner(claimants).Namespace).To(Equal("a"), "oldest, then namespace/name; a deleting one never owns")
	g.Expect(tenant.Owner(claimants[:1]).Namespace).To(Equal("b"))
	g.Expect(tenant.Owner(nil)).To(BeNil())
}

// The reader caches Secret metadata only and reads the data of the Secrets tenants name,
// once per resourceVersion; a rotation shows as soon as the metadata watch has it.
func TestReader_readsNamedSecretsAndFollowsRotation(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tn := env.Tenant(t, testenv.TenantOptions{SiteToken: "one"})
	c, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme,
		DefaultNamespaces: map[string]cache.Config{tn.Namespace: {}}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(index.Setup(ctx, c)).To(Succeed())
	go func() { _ = c.Start(ctx) }()
	g.Expect(c.WaitForCacheSync(ctx)).To(BeTrue())
	r := tenant.NewReader(c, env.Client)
	g.Eventually(func() (string, error) { return tenant.SiteToken(ctx, r, tn.Settings) }).Should(Equal("one"))

	var s corev1.Secret
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: tn.Namespace, Name: testenv.SiteTokenSecret}, &s)).To(Succeed())
	s.Data["token"] = []byte("two\n")
	g.Expect(env.Client.Update(ctx, &s)).To(Succeed())
	g.Eventually(func() (string, error) { return tenant.SiteToken(ctx, r, tn.Settings) }).Should(Equal("two"))

	owners, err := tenant.UsingSecret(ctx, c, client.ObjectKey{Namespace: tn.Namespace, Name: testenv.SiteTokenSecret}, tenant.SiteSecret)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(owners).To(ConsistOf(tn.Key()))
	owners, err = tenant.UsingSecret(ctx, c, client.ObjectKey{Namespace: tn.Namespace, Name: testenv.SiteTokenSecret}, tenant.BearerSecret)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(owners).To(BeEmpty(), "the site token Secret is not the bearer token Secret")
}
