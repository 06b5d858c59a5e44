package progress

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
)

func TestMeter_rateOverTheLastMinute(t *testing.T) {
	g := NewWithT(t)
	clock := time.Unix(1_800_000_000, 0)
	m := NewMeter()
	m.now = func() time.Time { return clock }
	a, b := types.NamespacedName{Namespace: "ns", Name: "a"}, types.NamespacedName{Namespace: "ns", Name: "b"}

	g.Expect(m.PerMinute(a)).To(BeZero(), "nothing counted yet")
	// 10 changes a second for 30 seconds: 600 a minute, though only half a minute passed.
	for range 30 {
		for range 10 {
			m.Done(a)
		}
		clock = clock.Add(time.Second)
	}
	g.Expect(m.PerMinute(a)).To(BeNumerically("~", 600, 1))
	g.Expect(m.PerMinute(b)).To(BeZero(), "tenants are counted apart")

	// Slower, 2 a second, for a whole minute: the old pace has left the window.
	for range 60 {
		m.Done(a)
		m.Done(a)
		clock = clock.Add(time.Second)
	}
	g.Expect(m.PerMinute(a)).To(BeNumerically("~", 120, 3))

	clock = clock.Add(2 * time.Minute)
	g.Expect(m.PerMinute(a)).To(BeZero(), "nothing finished in the last minute")
	m.Forget(a)
	g.Expect(m.tenants).To(BeEmpty())
}

func TestETA(t *testing.T) {
	g := NewWithT(t)
	now := time.Unix(1_800_000_000, 0)
	at, ok := ETA(now, 3000, 600)
	g.Expect(ok).To(BeTrue())
	g.Expect(at).To(Equal(now.Add(5 * time.Minute)))
	_, ok = ETA(now, 0, 600)
	g.Expect(ok).To(BeFalse(), "no backlog")
	_, ok = ETA(now, 10, 0)
	g.Expect(ok).To(BeFalse(), "no rate to go by")
}
