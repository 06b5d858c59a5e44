package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// tenant is the sample SCIM tenant: a namespace, two token Secrets and a ScimSettings.
type tenant struct {
	namespace, name      string
	scimToken, siteToken string
	siteURL              string
}

func (t tenant) basePath() string {
	s := scimv1.ScimSettings{ObjectMeta: metav1.ObjectMeta{Namespace: t.namespace, Name: t.name}}
	return s.EffectiveBasePath()
}

func (t tenant) create(ctx context.Context, c client.Client) error {
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.namespace}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.namespace, Name: t.name + "-scim-token"},
			StringData: map[string]string{"token": t.scimToken},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.namespace, Name: t.name + "-site-token"},
			StringData: map[string]string{"token": t.siteToken},
		},
		&scimv1.ScimSettings{
			ObjectMeta: metav1.ObjectMeta{Namespace: t.namespace, Name: t.name},
			Spec: scimv1.ScimSettingsSpec{
				BearerTokenSecretRef:    scimv1.BearerTokenSecretReference{Name: t.name + "-scim-token", Key: "token"},
				AllowModeratorPromotion: true,
				AllowAdminPromotion:     true,
				Site: scimv1.SiteSpec{
					URL:            t.siteURL,
					TokenSecretRef: scimv1.SecretKeyReference{Name: t.name + "-site-token", Key: "token"},
				},
				// Members pushed into these groups get the role; try it with /Groups.
				GroupRoles: []scimv1.GroupRole{
					{Group: "Stack Admins", Role: scimv1.RoleAdmin},
					{Group: "Stack Moderators", Role: scimv1.RoleModerator},
				},
				// Short enough to watch drift correction happen while trying things out.
				ResyncPeriod: &metav1.Duration{Duration: time.Minute},
			},
		},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// waitReady waits until the ScimSettings reports Ready=True.
func (t tenant) waitReady(ctx context.Context, c client.Client, timeout time.Duration) error {
	key := client.ObjectKey{Namespace: t.namespace, Name: t.name}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var s scimv1.ScimSettings
		if err := c.Get(ctx, key, &s); err != nil {
			return false, nil
		}
		cond := meta.FindStatusCondition(s.Status.Conditions, scimv1.ConditionReady)
		if cond == nil {
			return false, nil
		}
		last = cond.Reason + ": " + cond.Message
		return cond.Status == metav1.ConditionTrue, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last: %s)", err, last)
	}
	return nil
}
