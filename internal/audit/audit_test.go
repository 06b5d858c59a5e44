package audit_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m, func(e *testenv.Env) { env = e }))
}

func entry(action string) scimv1.AuditEntry {
	return scimv1.AuditEntry{Actor: scimv1.Actor{Kind: scimv1.ActorOperator}, Action: action, Result: scimv1.ResultApplied}
}

func actions(h []scimv1.AuditEntry) []string {
	var out []string
	for _, e := range h {
		out = append(out, e.Action)
	}
	return out
}

func TestPrepend_newestFirstAndBounded(t *testing.T) {
	cases := map[string]struct {
		history []string
		add     []string
		limit   int
		want    []string
	}{
		"into empty":          {nil, []string{"a", "b"}, 5, []string{"b", "a"}},
		"newest first":        {[]string{"b", "a"}, []string{"c"}, 5, []string{"c", "b", "a"}},
		"oldest dropped":      {[]string{"c", "b", "a"}, []string{"d"}, 3, []string{"d", "c", "b"}},
		"more than the limit": {[]string{"a"}, []string{"b", "c", "d"}, 2, []string{"d", "c"}},
		"default limit":       {nil, []string{"a"}, 0, []string{"a"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			var h, add []scimv1.AuditEntry
			for _, a := range tc.history {
				h = append(h, entry(a))
			}
			for _, a := range tc.add {
				add = append(add, entry(a))
			}
			got := audit.Prepend(h, tc.limit, add...)
			g.Expect(actions(got)).To(Equal(tc.want))
			g.Expect(got[0].Time.IsZero()).To(BeFalse(), "a new entry gets the current time")
		})
	}
}

func TestPrepend_truncatesLongValuesOnRuneBoundaries(t *testing.T) {
	g := NewWithT(t)
	e := entry("Update")
	e.Changes = []scimv1.FieldChange{{Field: "displayName", Old: strings.Repeat("é", 600), New: "x"}}
	got := audit.Prepend(nil, 5, e)
	g.Expect(len(got[0].Changes[0].Old)).To(BeNumerically("<=", 1024))
	g.Expect(got[0].Changes[0].Old).To(HaveSuffix("..."))
	g.Expect(strings.ToValidUTF8(got[0].Changes[0].Old, "?")).To(Equal(got[0].Changes[0].Old))
}

func TestDiff_listsChangedFieldsOldToNew(t *testing.T) {
	g := NewWithT(t)
	admin := scimv1.RoleAdmin
	off := false
	before := scimv1.StackUserSpec{UserName: "ada", Title: "Engineer", Name: &scimv1.Name{GivenName: "Ada"}}
	after := scimv1.StackUserSpec{UserName: "ada", Title: "CTO", Role: &admin, Active: &off, Name: &scimv1.Name{GivenName: "Ada"}}
	g.Expect(audit.Diff(audit.Flatten(&before), audit.Flatten(&after))).To(Equal([]scimv1.FieldChange{
		{Field: "active", Old: "true", New: "false"},
		{Field: "role", Old: "", New: "Admin"},
		{Field: "title", Old: "Engineer", New: "CTO"},
	}))
	g.Expect(audit.Summary([]scimv1.FieldChange{{Field: "role", New: "Admin"}})).To(Equal(`role: (unset) → "Admin"`))
}

// TestRecorder_concurrentAppendsLoseNothing: the SCIM server and the reconciler append to
// the same history at once; optimistic concurrency must keep every entry.
func TestRecorder_concurrentAppendsLoseNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	u := &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ada"},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: "okta"}, UserName: "ada"},
	}
	g.Expect(env.Client.Create(ctx, u)).To(Succeed())

	const writers, each = 4, 5
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := &audit.Recorder{Client: env.Client, Log: logr.Discard()}
			for i := range each {
				mine := &scimv1.StackUser{}
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), mine); err != nil {
					t.Error(err)
					return
				}
				if err := rec.Append(ctx, mine, 100, entry(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()

	got := &scimv1.StackUser{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
	g.Expect(got.Status.History).To(HaveLen(writers * each))
	seen := map[string]bool{}
	for _, e := range got.Status.History {
		seen[e.Action] = true
	}
	g.Expect(seen).To(HaveLen(writers*each), "no entry lost or duplicated")
}

// TestRecorder_concurrentAppendsStayBounded: prepends without a lock may leave a few
// extra old entries for a moment; the next write trims back to the limit, newest first.
func TestRecorder_concurrentAppendsStayBounded(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	u := &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bea"},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: "okta"}, UserName: "bea"},
	}
	g.Expect(env.Client.Create(ctx, u)).To(Succeed())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rec := &audit.Recorder{Client: env.Client, Log: logr.Discard()}
			for i := range 5 {
				mine := &scimv1.StackUser{}
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), mine); err != nil {
					t.Error(err)
					return
				}
				if err := rec.Append(ctx, mine, 5, entry(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	rec := &audit.Recorder{Client: env.Client, Log: logr.Discard()}
	last := &scimv1.StackUser{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(u), last)).To(Succeed())
	g.Expect(rec.Append(ctx, last, 5, entry("last"))).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(u), last)).To(Succeed())
	g.Expect(last.Status.History).To(HaveLen(5))
	g.Expect(last.Status.History[0].Action).To(Equal("last"))
}
