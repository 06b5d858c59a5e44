package index_test

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m, func(e *testenv.Env) { env = e }))
}

// TestEachUser_visitsATenantsUsers: the tenant index answers from a cluster-wide cache
// (read in place) and from a one-namespace cache (listed), with other tenants and other
// namespaces left out either way.
func TestEachUser_visitsATenantsUsers(t *testing.T) {
	ctx := context.Background()
	ns, other := env.Namespace(t), env.Namespace(t)
	for _, u := range []struct{ ns, name, tenant string }{{ns, "a", "okta"}, {ns, "b", "okta"}, {ns, "c", "entra"}, {other, "d", "okta"}} {
		su := &scimv1.StackUser{ObjectMeta: metav1.ObjectMeta{Namespace: u.ns, Name: u.name},
			Spec: scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: u.tenant}, UserName: u.name}}
		if err := env.Client.Create(ctx, su); err != nil {
			t.Fatal(err)
		}
	}
	for name, opts := range map[string]cache.Options{
		"cluster-wide":  {Scheme: env.Scheme},
		"one namespace": {Scheme: env.Scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			c, err := cache.New(env.Config, opts)
			g.Expect(err).NotTo(HaveOccurred())
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			g.Expect(index.Setup(cctx, c)).To(Succeed())
			go func() { _ = c.Start(cctx) }()
			g.Expect(c.WaitForCacheSync(cctx)).To(BeTrue())
			g.Eventually(func() []string {
				var names []string
				g.Expect(index.EachUser(cctx, c, ns, "okta", func(u *scimv1.StackUser) { names = append(names, u.Name) })).To(Succeed())
				return names
			}).WithTimeout(10 * time.Second).Should(ConsistOf("a", "b"))
		})
	}
}
