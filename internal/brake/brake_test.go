package brake

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// The window is a rolling hour counted in whole minutes: a change counts until its
// minute's end plus an hour, so rounding never lets more than the cap through.
func TestLedger_countsARollingHourAndNeverUndercounts(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 9, 0, 30, 0, time.UTC)
	l := &ledger{}
	l.add(t0)
	l.add(t0.Add(10 * time.Second))
	l.add(t0.Add(2 * time.Minute))
	if got := l.count(); got != 3 {
		t.Fatalf("count = %d, want 3", got)
	}
	if got := len(l.sent); got != 2 {
		t.Fatalf("minutes = %d, want 2 (two changes in the same minute share one)", got)
	}
	l.expire(t0.Add(time.Hour))
	if got := l.count(); got != 3 {
		t.Fatalf("an hour after the first change it still counts (its minute has not ended an hour ago): %d", got)
	}
	l.expire(t0.Add(time.Hour + 31*time.Second))
	if got := l.count(); got != 1 {
		t.Fatalf("count after the first minute left the window = %d, want 1", got)
	}
	if want := t0.Truncate(time.Minute).Add(2*time.Minute + time.Minute + Window); !l.nextSlot().Equal(want) {
		t.Fatalf("nextSlot = %s, want %s", l.nextSlot(), want)
	}
	l.remove(t0.Add(2 * time.Minute))
	if l.count() != 0 || len(l.sent) != 0 {
		t.Fatalf("remove left %v", l.sent)
	}
}

// Held users are released oldest hold first; equal times go by name.
func TestLedger_queueIsOldestHoldFirst(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	k := func(n string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: n} }
	l := &ledger{held: map[types.NamespacedName]time.Time{
		k("c"): t0.Add(time.Second), k("b"): t0, k("a"): t0.Add(time.Second), k("d"): t0.Add(-time.Minute),
	}}
	q := l.queue()
	want := []string{"d", "b", "a", "c"}
	for i, n := range want {
		if q[i].Name != n {
			t.Fatalf("queue = %v, want %v", q, want)
		}
	}
	if got := l.ahead(k("a"), t0.Add(time.Second), t0); got != 2 {
		t.Fatalf("ahead of a = %d, want 2 (d and b)", got)
	}
	if got := l.ahead(k("new"), time.Time{}, t0.Add(time.Hour)); got != 4 {
		t.Fatalf("a user not yet held waits behind all 4: %d", got)
	}
}

// With no cap the brake admits everything without touching the API (no ledger write).
func TestAdmit_noCapSendsWithoutALedger(t *testing.T) {
	b := &Brake{} // a nil Client would panic on any API call
	s := &scimv1.ScimSettings{}
	s.Namespace, s.Name = "ns", "t"
	b.ledger(types.NamespacedName{Namespace: "ns", Name: "t"}).loaded = true
	since := metav1.NewTime(time.Now())
	d, err := b.Admit(t.Context(), s, types.NamespacedName{Namespace: "ns", Name: "u"}, &since)
	if err != nil || !d.Send {
		t.Fatalf("Admit = %+v, %v; want Send", d, err)
	}
}
