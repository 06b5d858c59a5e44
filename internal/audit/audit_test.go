package audit_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// TestRecorder_concurrentAppendsLoseNothing: writers appending to one history at once
// (a reconcile and a late record of a conflicted one) keep every entry, each once.
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

// TestRecorder_concurrentAppendsStayBounded: the history never grows past the limit, and
// the newest entry is first.
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
	g.Expect(last.Status.History).To(HaveLen(5))
	g.Expect(rec.Append(ctx, last, 5, entry("last"))).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(u), last)).To(Succeed())
	g.Expect(last.Status.History).To(HaveLen(5))
	g.Expect(last.Status.History[0].Action).To(Equal("last"))
}

func idpEntry(requestID, action string, at time.Time) scimv1.AuditEntry {
	return scimv1.AuditEntry{Time: metav1.NewTime(at), Action: action, Result: scimv1.ResultApplied,
		Actor: scimv1.Actor{Kind: scimv1.ActorIdentityProvider, Name: "ns/okta", RequestID: requestID}}
}

func requestIDs(entries []scimv1.AuditEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Actor.RequestID)
	}
	return out
}

func TestAddPending_keepsWhatTheHistoryDoesNotHoldYet(t *testing.T) {
	g := NewWithT(t)
	t0 := time.Now().Add(-time.Hour)
	u := &scimv1.StackUser{}
	audit.AddPending(u, 20, idpEntry("r1", "Create", t0))
	audit.AddPending(u, 20, idpEntry("r2", "Patch", t0.Add(time.Second)))
	g.Expect(requestIDs(audit.Pending(u))).To(Equal([]string{"r2", "r1"}), "newest first")

	// The reconciler moved r1 in; the next request drops it from the annotation.
	u.Status.History = []scimv1.AuditEntry{idpEntry("r1", "Create", t0)}
	audit.AddPending(u, 20, idpEntry("r3", "Patch", t0.Add(2*time.Second)))
	g.Expect(requestIDs(audit.Pending(u))).To(Equal([]string{"r3", "r2"}))
	g.Expect(requestIDs(audit.Unrecorded(u, audit.TrailOf(u), 20))).To(Equal([]string{"r3", "r2"}))

	// The reconciler's own entry for the same request (it carries a message) is not the
	// request's entry.
	site := idpEntry("r3", "Patch", t0.Add(3*time.Second))
	site.Message = "updated the site user"
	u.Status.History = append([]scimv1.AuditEntry{site}, u.Status.History...)
	g.Expect(requestIDs(audit.Unrecorded(u, audit.TrailOf(u), 20))).To(Equal([]string{"r3", "r2"}))

	u.Status.History = append([]scimv1.AuditEntry{idpEntry("r3", "Patch", t0.Add(2*time.Second)), idpEntry("r2", "Patch", t0.Add(time.Second))}, u.Status.History...)
	g.Expect(audit.Unrecorded(u, audit.TrailOf(u), 20)).To(BeEmpty())
}

func TestAddPending_staysWithinTheLimitAndTheAnnotationBudget(t *testing.T) {
	g := NewWithT(t)
	t0 := time.Now()
	u := &scimv1.StackUser{}
	for i := range 30 {
		audit.AddPending(u, 5, idpEntry(fmt.Sprintf("r%d", i), "Patch", t0.Add(time.Duration(i)*time.Second)))
	}
	g.Expect(requestIDs(audit.Pending(u))).To(Equal([]string{"r29", "r28", "r27", "r26", "r25"}))

	// Entries near the largest size the CRD allows: the annotation stays far below the
	// API server's 256 KiB for all annotations, and the newest entry is always kept.
	big := func(id string) scimv1.AuditEntry {
		e := idpEntry(id, "Replace", t0)
		for i := range 64 {
			e.Changes = append(e.Changes, scimv1.FieldChange{Field: fmt.Sprintf("f%d", i), Old: strings.Repeat("o", 1024), New: strings.Repeat("n", 1024)})
		}
		return e
	}
	u = &scimv1.StackUser{}
	for i := range 10 {
		audit.AddPending(u, 200, big(fmt.Sprintf("b%d", i)))
		g.Expect(len(u.Annotations[audit.AnnotationPendingAudit])).To(BeNumerically("<=", 128<<10))
		g.Expect(requestIDs(audit.Pending(u))[0]).To(Equal(fmt.Sprintf("b%d", i)))
	}
}

// newUser is a StackUser (not yet created) in a fresh namespace.
func newUser(t *testing.T, name string) *scimv1.StackUser {
	return &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace(t), Name: name},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: "okta"}, UserName: name},
	}
}

// TestRecorder_appendMovesPendingEntriesFirst: a history write also records the SCIM
// requests' entries left on the object, before its own, exactly once.
func TestRecorder_appendMovesPendingEntriesFirst(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	u := newUser(t, "cy")
	audit.AddPending(u, 20, idpEntry("r1", "Create", time.Now().Add(-time.Minute)))
	g.Expect(env.Client.Create(ctx, u)).To(Succeed())
	rec := &audit.Recorder{Client: env.Client, Log: logr.Discard()}
	g.Expect(rec.Append(ctx, u, 20, entry("Deactivate"))).To(Succeed())
	g.Expect(rec.Append(ctx, u, 20, entry("Delete"))).To(Succeed())

	got := &scimv1.StackUser{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
	g.Expect(actions(got.Status.History)).To(Equal([]string{"Delete", "Deactivate", "Create"}))
}

// TestStatusPatch_staleCopyConflicts: a patch computed from an old copy is refused, so an
// entry is never recorded twice by a reconcile that read a lagging cache.
func TestStatusPatch_staleCopyConflicts(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	u := newUser(t, "di")
	g.Expect(env.Client.Create(ctx, u)).To(Succeed())
	stale := u.DeepCopy()
	g.Expect(env.Client.Status().Patch(ctx, u, audit.NewStatusPatch(u, audit.TrailOf(u), 20, nil, entry("first")))).To(Succeed())
	err := env.Client.Status().Patch(ctx, stale.DeepCopy(), audit.NewStatusPatch(stale, audit.TrailOf(stale), 20, nil, entry("first")))
	g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "got %v", err)
	g.Expect(env.Client.Status().Patch(ctx, u, audit.NewStatusPatch(u, audit.TrailOf(u), 20, map[string]any{"observedGeneration": 1}, entry("second")))).To(Succeed())
	g.Expect(actions(u.Status.History)).To(Equal([]string{"second", "first"}))
	g.Expect(u.Status.ObservedGeneration).To(Equal(int64(1)))
}
