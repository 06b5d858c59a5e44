// Package brake holds back mass deactivation: a tenant's deactivations and demotions past
// spec.safety.maxDeactivationsPerHour in a rolling hour are held, not sent, and released
// oldest first when the hour rolls on, when the cap is raised, or when the release-held
// annotation changes.
//
// The ledger of what was sent lives in the ScimSettings status (status.safety), written
// before the change goes to the site: a restarted manager keeps counting the same hour,
// and a crash between the ledger write and the site call errs on the side of sending
// fewer. Which users wait, and since when, lives in each StackUser's status.heldSince,
// so the order of release survives restarts too.
package brake

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/index"
)

// Window is the rolling period the cap applies to.
const Window = time.Hour

// Decision is the brake's answer for one user's deactivation or demotion.
type Decision struct {
	// Send says the change may go to the site now; it has been counted.
	Send bool
	// Released says it goes out because the release-held annotation changed (past the cap).
	Released bool
	// HeldSince is when the change was first held (zero when it never was).
	HeldSince time.Time
	// Sent is how many changes the ledger counts in the current window, cap is the cap.
	Sent, Cap int
	// Ahead is the number of held users waiting before this one.
	Ahead int
	// NextSlot is when the oldest counted change leaves the window (zero if unknown).
	NextSlot time.Time
}

// Waker is told which held users to reconcile when slots free up.
type Waker func(users []types.NamespacedName)

// Brake keeps one ledger per tenant. It is used by the leader's StackUser reconciler only,
// which is the ledger's single writer.
type Brake struct {
	// Client patches the ScimSettings status and lists held StackUsers (cache reads).
	Client client.Client
	// Wake enqueues held users when slots free up; nil disables waking (tests).
	Wake Waker
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu      sync.Mutex
	tenants map[types.NamespacedName]*ledger
}

type ledger struct {
	mu     sync.Mutex
	loaded bool
	// uid guards against a ScimSettings deleted and recreated with the same name.
	uid           types.UID
	sent          []scimv1.SentCount
	releasedValue string
	releasedAt    time.Time
	held          map[types.NamespacedName]time.Time
	timer         *time.Timer
}

func (b *Brake) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Brake) ledger(key types.NamespacedName) *ledger {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tenants == nil {
		b.tenants = map[types.NamespacedName]*ledger{}
	}
	l := b.tenants[key]
	if l == nil {
		l = &ledger{held: map[types.NamespacedName]time.Time{}}
		b.tenants[key] = l
	}
	return l
}

// Admit decides whether user's deactivation or demotion may be sent now. heldSince is the
// user's status.heldSince (nil when it was never held). A Send decision is already in the
// ledger: the caller must send the change (or count it as lost, never retry it as new).
func (b *Brake) Admit(ctx context.Context, settings *scimv1.ScimSettings, user types.NamespacedName, heldSince *metav1.Time) (Decision, error) {
	limit := settings.MaxDeactivationsPerHour()
	key := types.NamespacedName{Namespace: settings.Namespace, Name: settings.Name}
	l := b.ledger(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := b.now()
	if err := b.load(ctx, l, settings); err != nil {
		return Decision{}, err
	}
	var since time.Time
	if heldSince != nil {
		since = heldSince.Time
	}
	if limit <= 0 {
		delete(l.held, user)
		return Decision{Send: true, HeldSince: since}, nil
	}
	l.expire(now)
	released, err := b.noteRelease(ctx, l, settings, now)
	if err != nil {
		return Decision{}, err
	}
	if released {
		b.wakeAll(l)
	}
	d := Decision{HeldSince: since, Sent: l.count(), Cap: limit, NextSlot: l.nextSlot()}
	releasedNow := !since.IsZero() && !l.releasedAt.IsZero() && !since.After(l.releasedAt)
	if !releasedNow {
		d.Ahead = l.ahead(user, since, now)
		if d.Sent >= limit || d.Ahead > 0 {
			if since.IsZero() {
				since = now
				d.HeldSince = now
			}
			l.held[user] = since
			b.schedule(l, limit, now)
			return d, nil
		}
	}
	l.add(now)
	if err := b.persist(ctx, key, l); err != nil {
		l.remove(now)
		return Decision{}, err
	}
	delete(l.held, user)
	d.Send, d.Released, d.Sent = true, releasedNow, l.count()
	if len(l.held) > 0 && l.count() < limit {
		// Room left: the next in line need not wait for the timer.
		b.wakeFirst(l, limit-l.count())
	}
	return d, nil
}

// Forget drops user from the held set: it no longer needs a held change (the IdP
// reactivated it, the StackUser is gone). Waiting users behind it move up.
func (b *Brake) Forget(user types.NamespacedName) {
	b.mu.Lock()
	var ls []*ledger
	for k, l := range b.tenants {
		if k.Namespace == user.Namespace {
			ls = append(ls, l)
		}
	}
	b.mu.Unlock()
	for _, l := range ls {
		l.mu.Lock()
		if _, ok := l.held[user]; ok {
			delete(l.held, user)
			if l.loaded {
				b.wakeFirst(l, 1)
			}
		}
		l.mu.Unlock()
	}
}

// Held is the number of users the brake holds for a tenant.
func (b *Brake) Held(settings types.NamespacedName) int {
	l := b.ledger(settings)
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// SettingsChanged is called when a tenant's ScimSettings changes: a raised cap or a new
// release-held value frees held users at once.
func (b *Brake) SettingsChanged(ctx context.Context, settings *scimv1.ScimSettings) {
	key := types.NamespacedName{Namespace: settings.Namespace, Name: settings.Name}
	l := b.ledger(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.loaded || len(l.held) == 0 {
		return
	}
	limit := settings.MaxDeactivationsPerHour()
	if limit <= 0 || settings.Annotations[scimv1.ReleaseHeldAnnotation] != l.releasedValue {
		b.wakeAll(l)
		return
	}
	l.expire(b.now())
	if free := limit - l.count(); free > 0 {
		b.wakeFirst(l, free)
	}
}

// load reads the ledger from the ScimSettings status and the held users from their
// status, once per tenant (and again if the ScimSettings was recreated).
func (b *Brake) load(ctx context.Context, l *ledger, settings *scimv1.ScimSettings) error {
	if l.loaded && l.uid == settings.UID {
		return nil
	}
	l.sent, l.releasedValue, l.releasedAt = nil, "", time.Time{}
	if st := settings.Status.Safety; st != nil {
		l.sent = slices.Clone(st.Sent)
		l.releasedValue = st.ReleasedValue
		if st.ReleasedAt != nil {
			l.releasedAt = st.ReleasedAt.Time
		}
	}
	held := map[types.NamespacedName]time.Time{}
	// Read in place from the cache's tenant index: a deep copy of every user of a 100k
	// tenant to find the few held ones would cost a gigabyte.
	err := index.EachUser(ctx, b.Client, settings.Namespace, settings.Name, func(u *scimv1.StackUser) {
		if u.Status.HeldSince != nil {
			held[client.ObjectKeyFromObject(u)] = u.Status.HeldSince.Time
		}
	})
	if err != nil {
		return fmt.Errorf("listing held StackUsers: %w", err)
	}
	l.held = held
	l.loaded, l.uid = true, settings.UID
	return nil
}

// noteRelease records a new release-held annotation value: every change held until now
// is released. A value present when the ledger is first written releases nothing (there
// was nothing to release before the brake saw it).
func (b *Brake) noteRelease(ctx context.Context, l *ledger, settings *scimv1.ScimSettings, now time.Time) (bool, error) {
	v := settings.Annotations[scimv1.ReleaseHeldAnnotation]
	if v == l.releasedValue {
		return false, nil
	}
	l.releasedValue, l.releasedAt = v, now.Truncate(time.Second)
	if err := b.persist(ctx, types.NamespacedName{Namespace: settings.Namespace, Name: settings.Name}, l); err != nil {
		return false, err
	}
	return len(l.held) > 0, nil
}

// expire drops minutes that left the window. A minute counts until its end plus the
// window, so the cap is never exceeded by rounding.
func (l *ledger) expire(now time.Time) {
	l.sent = slices.DeleteFunc(l.sent, func(c scimv1.SentCount) bool {
		return !now.Before(c.Minute.Add(time.Minute + Window))
	})
}

func (l *ledger) count() int {
	n := 0
	for _, c := range l.sent {
		n += int(c.Count)
	}
	return n
}

func (l *ledger) add(now time.Time) {
	m := now.Truncate(time.Minute)
	if n := len(l.sent); n > 0 && l.sent[n-1].Minute.Equal(&metav1.Time{Time: m}) {
		l.sent[n-1].Count++
		return
	}
	l.sent = append(l.sent, scimv1.SentCount{Minute: metav1.Time{Time: m}, Count: 1})
}

func (l *ledger) remove(now time.Time) {
	m := now.Truncate(time.Minute)
	if n := len(l.sent); n > 0 && l.sent[n-1].Minute.Time.Equal(m) {
		l.sent[n-1].Count--
		if l.sent[n-1].Count == 0 {
			l.sent = l.sent[:n-1]
		}
	}
}

// nextSlot is when the oldest counted minute leaves the window.
func (l *ledger) nextSlot() time.Time {
	if len(l.sent) == 0 {
		return time.Time{}
	}
	return l.sent[0].Minute.Add(time.Minute + Window)
}

// ahead counts held users that wait before user (held earlier; the name breaks ties).
func (l *ledger) ahead(user types.NamespacedName, since, now time.Time) int {
	if since.IsZero() {
		since = now
	}
	n := 0
	for k, t := range l.held {
		if k != user && before(k, t, user, since) {
			n++
		}
	}
	return n
}

func before(a types.NamespacedName, at time.Time, b types.NamespacedName, bt time.Time) bool {
	if !at.Equal(bt) {
		return at.Before(bt)
	}
	return a.String() < b.String()
}

// queue lists the held users oldest first.
func (l *ledger) queue() []types.NamespacedName {
	out := make([]types.NamespacedName, 0, len(l.held))
	for k := range l.held {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b types.NamespacedName) int {
		switch {
		case before(a, l.held[a], b, l.held[b]):
			return -1
		case before(b, l.held[b], a, l.held[a]):
			return 1
		}
		return 0
	})
	return out
}

func (b *Brake) wakeFirst(l *ledger, n int) {
	if b.Wake == nil || n <= 0 {
		return
	}
	q := l.queue()
	b.Wake(q[:min(n, len(q))])
}

func (b *Brake) wakeAll(l *ledger) {
	if b.Wake != nil {
		b.Wake(l.queue())
	}
}

// schedule wakes the first held users when the oldest counted minute leaves the window.
func (b *Brake) schedule(l *ledger, limit int, now time.Time) {
	next := l.nextSlot()
	if next.IsZero() || b.Wake == nil {
		return
	}
	if l.timer != nil {
		l.timer.Stop()
	}
	l.timer = time.AfterFunc(next.Sub(now)+time.Second, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.expire(b.now())
		if free := limit - l.count(); free > 0 {
			b.wakeFirst(l, free)
		}
	})
}

// persist writes the ledger to the ScimSettings status with a merge patch of
// status.safety alone: no other writer touches it.
func (b *Brake) persist(ctx context.Context, key types.NamespacedName, l *ledger) error {
	safety := map[string]any{"sent": l.sent, "releasedValue": nil, "releasedAt": nil}
	if l.sent == nil {
		safety["sent"] = []scimv1.SentCount{}
	}
	if l.releasedValue != "" {
		safety["releasedValue"] = l.releasedValue
		safety["releasedAt"] = metav1.NewTime(l.releasedAt)
	}
	data, err := json.Marshal(map[string]any{"status": map[string]any{"safety": safety}})
	if err != nil {
		return err
	}
	s := &scimv1.ScimSettings{}
	s.Namespace, s.Name = key.Namespace, key.Name
	if err := b.Client.Status().Patch(ctx, s, client.RawPatch(types.MergePatchType, data)); err != nil {
		return fmt.Errorf("recording the deactivation brake's ledger: %w", err)
	}
	return nil
}
