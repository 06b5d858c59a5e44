package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/plan"
)

// pageSize bounds each list request, so a tenant with many thousand users is read in
// pages rather than one huge response.
const pageSize = 500

// scope is what to plan: one ScimSettings (name set), a namespace's, or every namespace's
// (namespace empty).
type scope struct {
	namespace, name string
}

func (s scope) String() string {
	switch {
	case s.name != "":
		return fmt.Sprintf("ScimSettings %s/%s", s.namespace, s.name)
	case s.namespace != "":
		return "namespace " + s.namespace
	}
	return "any namespace"
}

// source reads ScimSettings and StackUsers from the API server.
type source struct {
	c    client.Client
	host string
}

func newSource(cfg *rest.Config) (*source, error) {
	s := runtime.NewScheme()
	if err := scimv1.AddToScheme(s); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("creating a client for %s: %w", cfg.Host, err)
	}
	return &source{c: c, host: cfg.Host}, nil
}

// plan reads the tenants in scope and their users, and builds their plans.
func (s *source) plan(ctx context.Context, sc scope) (*plan.Plan, error) {
	var settings []scimv1.ScimSettings
	if sc.name != "" {
		var one scimv1.ScimSettings
		if err := s.c.Get(ctx, types.NamespacedName{Namespace: sc.namespace, Name: sc.name}, &one); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("%s not found", sc)
			}
			return nil, s.explain(err, "reading "+sc.String())
		}
		settings = append(settings, one)
	} else {
		var err error
		if settings, err = listAll(ctx, s.c, sc.namespace, func() *scimv1.ScimSettingsList { return &scimv1.ScimSettingsList{} }, func(l *scimv1.ScimSettingsList) []scimv1.ScimSettings { return l.Items }); err != nil {
			return nil, s.explain(err, "listing ScimSettings in "+sc.String())
		}
		if len(settings) == 0 {
			return nil, fmt.Errorf("no ScimSettings (tenant) in %s", sc)
		}
	}
	users, err := listAll(ctx, s.c, sc.namespace, func() *scimv1.StackUserList { return &scimv1.StackUserList{} }, func(l *scimv1.StackUserList) []scimv1.StackUser { return l.Items })
	if err != nil {
		return nil, s.explain(err, "listing StackUsers in "+scope{namespace: sc.namespace}.String())
	}
	slices.SortFunc(settings, func(a, b scimv1.ScimSettings) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	byTenant := map[types.NamespacedName][]scimv1.StackUser{}
	for _, u := range users {
		k := types.NamespacedName{Namespace: u.Namespace, Name: u.Spec.SettingsRef.Name}
		byTenant[k] = append(byTenant[k], u)
	}
	p := &plan.Plan{Tenants: make([]plan.Tenant, 0, len(settings))}
	for i := range settings {
		st := &settings[i]
		p.Tenants = append(p.Tenants, plan.Build(st, byTenant[types.NamespacedName{Namespace: st.Namespace, Name: st.Name}]))
	}
	return p, nil
}

// listAll lists every object of a kind in namespace ("" = all), page by page. Each page
// decodes into a fresh list: decoding into a used one could keep fields of the objects of
// the page before.
func listAll[L client.ObjectList, T any](ctx context.Context, c client.Client, namespace string, newList func() L, items func(L) []T) ([]T, error) {
	var all []T
	next := ""
	for {
		list := newList()
		opts := []client.ListOption{client.Limit(pageSize), client.Continue(next)}
		if namespace != "" {
			opts = append(opts, client.InNamespace(namespace))
		}
		if err := c.List(ctx, list, opts...); err != nil {
			return nil, err
		}
		all = append(all, items(list)...)
		if next = list.GetContinue(); next == "" {
			return all, nil
		}
	}
}

// explain turns the errors people meet into sentences that say what to do.
func (s *source) explain(err error, what string) error {
	var netErr net.Error
	var noKind *meta.NoKindMatchError
	switch {
	case errors.As(err, &noKind), meta.IsNoMatchError(err):
		return fmt.Errorf("%s: the cluster at %s has no ScimSettings/StackUser CRDs (scim.stackscim.io/v1alpha1); is stack-scim-operator installed?", what, s.host)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %w (the plan needs get and list on scimsettings and stackusers.scim.stackscim.io)", what, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: the API server at %s rejected the credentials: %w", what, s.host, err)
	case errors.As(err, &netErr):
		return fmt.Errorf("%s: cannot reach the Kubernetes API at %s: %w", what, s.host, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
