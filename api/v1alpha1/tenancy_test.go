package v1alpha1_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// settingsWithDurations is a ScimSettings as kubectl would send it, durations as typed.
func settingsWithDurations(ns, timeout, resync string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": scimv1.GroupVersion.String(),
		"kind":       "ScimSettings",
		"metadata":   map[string]any{"namespace": ns, "generateName": "d-"},
		"spec": map[string]any{
			"bearerTokenSecretRef": map[string]any{"name": "scim-token"},
			"site": map[string]any{
				"url":            "https://stack.example.com/api/scim/v2",
				"tokenSecretRef": map[string]any{"name": "site-token"},
			},
		},
	}}
	if timeout != "" {
		_ = unstructured.SetNestedField(u.Object, timeout, "spec", "site", "timeout")
	}
	if resync != "" {
		_ = unstructured.SetNestedField(u.Object, resync, "spec", "resyncPeriod")
	}
	return u
}

// `resyncPeriod: 1d` used to pass the schema and then break every ScimSettings list of
// the manager: durations are checked at admission now.
func TestScimSettings_durationsAreValidatedAtAdmission(t *testing.T) {
	ns := env.Namespace(t)
	cases := map[string]struct {
		timeout, resync string
		want            string // "" = accepted
	}{
		"resync in days":        {resync: "1d", want: "spec.resyncPeriod"},
		"timeout in days":       {timeout: "2d", want: "spec.site.timeout"},
		"resync not a duration": {resync: "often", want: "spec.resyncPeriod"},
		"resync too short":      {resync: "500ms", want: "resyncPeriod must be at least 1s"},
		"timeout too short":     {timeout: "1ms", want: "timeout must be between 100ms and 10m"},
		"timeout too long":      {timeout: "1h", want: "timeout must be between 100ms and 10m"},
		"a day in hours":        {resync: "24h", timeout: "1m30s"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			err := env.Client.Create(context.Background(), settingsWithDurations(ns, tc.timeout, tc.resync))
			if tc.want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.want))
		})
	}
}

// An object stored before durations were validated must not fail the decoding of the
// list it is in: that stopped the SCIM server for every tenant. The bad field is left to
// its default and reported.
func TestScimSettings_undecodableDurationDoesNotFailTheList(t *testing.T) {
	g := NewWithT(t)
	list := fmt.Sprintf(`{"apiVersion":%q,"kind":"ScimSettingsList","metadata":{},"items":[
	 {"apiVersion":%[1]q,"kind":"ScimSettings","metadata":{"name":"bad","namespace":"a"},
	  "spec":{"bearerTokenSecretRef":{"name":"t"},"resyncPeriod":"1d","site":{"url":"https://x","tokenSecretRef":{"name":"s"},"timeout":"2d"}}},
	 {"apiVersion":%[1]q,"kind":"ScimSettings","metadata":{"name":"good","namespace":"b"},
	  "spec":{"bearerTokenSecretRef":{"name":"t"},"resyncPeriod":"24h","site":{"url":"https://x","tokenSecretRef":{"name":"s"},"timeout":"5s"}}}]}`,
		scimv1.GroupVersion.String())
	codecs := serializer.NewCodecFactory(env.Scheme)
	obj, _, err := codecs.UniversalDeserializer().Decode([]byte(list), nil, nil)
	g.Expect(err).NotTo(HaveOccurred())
	items := obj.(*scimv1.ScimSettingsList).Items
	g.Expect(items).To(HaveLen(2))
	bad, good := items[0], items[1]
	g.Expect(bad.Spec.ResyncPeriod).To(BeNil())
	g.Expect(bad.EffectiveResyncPeriod()).To(Equal(10 * time.Minute))
	g.Expect(bad.Spec.Site.Timeout).To(BeNil())
	g.Expect(bad.SpecProblems()).To(ConsistOf(ContainSubstring(`spec.resyncPeriod "1d"`), ContainSubstring(`spec.site.timeout "2d"`)))
	g.Expect(good.SpecProblems()).To(BeEmpty())
	g.Expect(good.Spec.ResyncPeriod.Duration).To(Equal(24 * time.Hour))
	g.Expect(good.Spec.Site.Timeout.Duration).To(Equal(5 * time.Second))
}

// Moving a StackUser to another tenant would make status.siteId PATCH whatever account has
// that id on the other site.
func TestStackUser_settingsRefIsImmutable(t *testing.T) {
	g := NewWithT(t)
	u := validUser(env.Namespace(t))
	g.Expect(env.Client.Create(context.Background(), u)).To(Succeed())
	base := u.DeepCopy()
	u.Spec.SettingsRef.Name = "other"
	err := env.Client.Patch(context.Background(), u, client.MergeFrom(base))
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("settingsRef is immutable"))
}

// A group's members are labelled for its tenant: moving the group would hand them to
// another tenant's role mapping.
func TestStackGroup_settingsRefIsImmutable(t *testing.T) {
	g := NewWithT(t)
	grp := &scimv1.StackGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "g1", Namespace: env.Namespace(t)},
		Spec:       scimv1.StackGroupSpec{SettingsRef: scimv1.SettingsReference{Name: "okta"}, DisplayName: "Stack Admins"},
	}
	g.Expect(env.Client.Create(context.Background(), grp)).To(Succeed())
	base := grp.DeepCopy()
	grp.Spec.SettingsRef.Name = "other"
	err := env.Client.Patch(context.Background(), grp, client.MergeFrom(base))
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("settingsRef is immutable"))
}

// The schema caps the history, so no writer can grow a StackUser past etcd's limit.
func TestStackUser_historyIsCappedInTheSchema(t *testing.T) {
	g := NewWithT(t)
	u := validUser(env.Namespace(t))
	g.Expect(env.Client.Create(context.Background(), u)).To(Succeed())
	for range 201 {
		u.Status.History = append(u.Status.History, scimv1.AuditEntry{Time: metav1.Now(),
			Actor: scimv1.Actor{Kind: scimv1.ActorOperator}, Action: "Update", Result: scimv1.ResultApplied})
	}
	err := env.Client.Status().Update(context.Background(), u)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("status.history"))
}
