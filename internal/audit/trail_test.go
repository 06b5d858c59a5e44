package audit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
)

// cached is what the manager's cache holds of u: a copy without its history, whose trail
// trails keeps.
func cached(trails *audit.Trails, u *scimv1.StackUser) *scimv1.StackUser {
	c := u.DeepCopy()
	trails.Strip(c)
	return c
}

// TestTrails_appendFromCachedCopiesKeepsTheHistoryExact: status patches made from cached
// copies, which carry no history, keep the stored history newest first and at the limit,
// exactly as patches made from full copies do.
func TestTrails_appendFromCachedCopiesKeepsTheHistoryExact(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	trails := audit.NewTrails()
	u := newUser(t, "trail-limit")
	g.Expect(env.Client.Create(ctx, u)).To(Succeed())
	var want []string
	for i := range 25 {
		c := cached(trails, u)
		g.Expect(c.Status.History).To(BeNil(), "the cache's copy carries no history")
		trail, ok := trails.Of(c)
		g.Expect(ok).To(BeTrue())
		g.Expect(trail.Len()).To(Equal(min(i, 5)))
		action := fmt.Sprintf("a%02d", i)
		g.Expect(env.Client.Status().Patch(ctx, u, audit.NewStatusPatch(c, trail, 5, nil, entry(action)))).To(Succeed())
		want = append([]string{action}, want...)
	}
	got := &scimv1.StackUser{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
	g.Expect(actions(got.Status.History)).To(Equal(want[:5]))
}

// TestTrails_byteBudgetFromCachedCopies: the history's byte bound (MaxHistoryBytes) holds
// when the patch is made from a cached copy, which knows only the entries' sizes.
func TestTrails_byteBudgetFromCachedCopies(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	trails := audit.NewTrails()
	u := newUser(t, "trail-bytes")
	g.Expect(env.Client.Create(ctx, u)).To(Succeed())
	big := func(action string) scimv1.AuditEntry {
		e := entry(action)
		for f := range 64 {
			e.Changes = append(e.Changes, scimv1.FieldChange{Field: fmt.Sprintf("f%d", f), Old: strings.Repeat("o", 600), New: strings.Repeat("n", 600)})
		}
		return e
	}
	for i := range 4 {
		c := cached(trails, u)
		trail, _ := trails.Of(c)
		g.Expect(env.Client.Status().Patch(ctx, u, audit.NewStatusPatch(c, trail, 200, nil, big(fmt.Sprint(i))))).To(Succeed())
	}
	got := &scimv1.StackUser{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
	g.Expect(actions(got.Status.History)).To(Equal([]string{"3", "2", "1"}), "four entries of about 78 KiB pass 256 KiB; the oldest goes")
}

// TestTrails_pendingEntriesOfCachedCopies: the cache keeps in the pending annotation only
// the SCIM requests' entries the history does not hold, so a writer with the cached copy
// records each exactly once; one trimmed from a full history is not recorded again.
func TestTrails_pendingEntriesOfCachedCopies(t *testing.T) {
	g := NewWithT(t)
	trails := audit.NewTrails()
	// Whole seconds: the annotation keeps times at that precision.
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	u := &scimv1.StackUser{}
	u.Name, u.Namespace, u.ResourceVersion = "p", "ns", "7"
	audit.AddPending(u, 20, idpEntry("r1", "Create", t0))
	audit.AddPending(u, 20, idpEntry("r2", "Patch", t0.Add(2*time.Second)))
	audit.AddPending(u, 20, idpEntry("r3", "Patch", t0.Add(3*time.Second)))
	u.Status.History = []scimv1.AuditEntry{idpEntry("r3", "Patch", t0.Add(3*time.Second)), entry("x"), entry("y")}
	u.Status.History[1].Time.Time, u.Status.History[2].Time.Time = t0.Add(4*time.Second), t0.Add(time.Second)

	c := cached(trails, u)
	g.Expect(requestIDs(audit.Pending(c))).To(Equal([]string{"r2", "r1"}), "r3 is in the history")
	trail, ok := trails.Of(c)
	g.Expect(ok).To(BeTrue())
	g.Expect(requestIDs(audit.Unrecorded(c, trail, 20))).To(Equal([]string{"r2", "r1"}))
	g.Expect(requestIDs(audit.Unrecorded(c, trail, 3))).To(Equal([]string{"r2"}),
		"at limit 3 the history is full, and r1 is older than its oldest entry: it was trimmed")

	// Two newer versions later the cached copy's trail is gone: the writer must read live.
	for _, rv := range []string{"8", "9"} {
		n := u.DeepCopy()
		n.ResourceVersion = rv
		trails.Strip(n)
	}
	_, ok = trails.Of(c)
	g.Expect(ok).To(BeFalse())
	trails.Forget(client.ObjectKeyFromObject(u))
	g.Expect(trails.Len()).To(BeZero())
}

// TestRecorder_appendWithACachedCopyReadsLiveWhenItsTrailIsGone: Append given a cached
// copy whose trail is no longer kept reads the user live and records the entry once.
func TestRecorder_appendWithACachedCopyReadsLiveWhenItsTrailIsGone(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	trails := audit.NewTrails()
	u := newUser(t, "trail-live")
	g.Expect(env.Client.Create(ctx, u)).To(Succeed())
	rec := &audit.Recorder{Client: env.Client, Live: env.Client, Trails: trails, Log: logr.Discard()}
	g.Expect(rec.Append(ctx, u, 20, entry("first"))).To(Succeed())
	c := cached(audit.NewTrails(), u) // stripped, its trail kept elsewhere
	g.Expect(rec.Append(ctx, c, 20, entry("second"))).To(Succeed())
	got := &scimv1.StackUser{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
	g.Expect(actions(got.Status.History)).To(Equal([]string{"second", "first"}))
}

// TestStatusPatch_firstWriteFromACopyAheadOfTheStoredStatus: the first status write of a
// user succeeds even when the copy it is made from carries a status the API server does
// not hold yet (the reconciler puts back the site user it saw when an earlier write
// failed), and it still refuses a stale copy.
func TestStatusPatch_firstWriteFromACopyAheadOfTheStoredStatus(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	u := newUser(t, "first-write")
	g.Expect(env.Client.Create(ctx, u)).To(Succeed())
	ahead := u.DeepCopy()
	ahead.Status.SiteID = "100001"
	patch := audit.NewStatusPatch(ahead, audit.TrailOf(ahead), 20, map[string]any{"siteId": "100001", "observedGeneration": 1}, entry("Create"))
	g.Expect(env.Client.Status().Patch(ctx, ahead, patch)).To(Succeed())
	g.Expect(ahead.Status.SiteID).To(Equal("100001"))
	g.Expect(actions(ahead.Status.History)).To(Equal([]string{"Create"}))

	stale := audit.NewStatusPatch(u, audit.TrailOf(u), 20, nil, entry("again"))
	g.Expect(apierrors.IsConflict(env.Client.Status().Patch(ctx, u.DeepCopy(), stale))).To(BeTrue())
}

// TestTrails_aSecondPassOfTheSameVersionKeepsItsTrail: a relist passes objects through
// the cache transform again, already stripped; the trail made from the history stays.
func TestTrails_aSecondPassOfTheSameVersionKeepsItsTrail(t *testing.T) {
	g := NewWithT(t)
	trails := audit.NewTrails()
	u := &scimv1.StackUser{}
	u.Name, u.Namespace, u.ResourceVersion = "twice", "ns", "5"
	u.Status.History = []scimv1.AuditEntry{entry("b"), entry("a")}
	c := cached(trails, u)
	trails.Strip(c.DeepCopy())
	trail, ok := trails.Of(c)
	g.Expect(ok).To(BeTrue())
	g.Expect(trail.Len()).To(Equal(2))
}

// TestRecorder_aFirstHistoryIsOnlyWrittenWhenTheAPIServerHasNone: a copy whose trail says
// the history is empty is checked against the API server before the first history is
// written (a merge patch, which would replace the stored entries), so a trail that is
// wrong cannot lose entries.
func TestRecorder_aFirstHistoryIsOnlyWrittenWhenTheAPIServerHasNone(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	u := newUser(t, "trail-empty")
	g.Expect(env.Client.Create(ctx, u)).To(Succeed())
	rec := &audit.Recorder{Client: env.Client, Live: env.Client, Log: logr.Discard()}
	g.Expect(rec.Append(ctx, u, 20, entry("first"))).To(Succeed())

	trails := audit.NewTrails()
	wrong := u.DeepCopy()
	wrong.Status.History = nil // a trail that misses the stored entry
	trails.Strip(wrong)
	rec.Trails = trails
	g.Expect(rec.Append(ctx, wrong, 20, entry("second"))).To(Succeed())
	got := &scimv1.StackUser{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
	g.Expect(actions(got.Status.History)).To(Equal([]string{"second", "first"}))
}
