package manager

import (
	"slices"
	"testing"
)

// --watch-namespace takes several namespaces, so tenants in a few namespaces need a Role
// in each and never a cluster-wide Secret read.
func TestOptions_watchNamespacesTakesAList(t *testing.T) {
	cases := map[string][]string{
		"":                      nil,
		"stack":                 {"stack"},
		"stack, stack-eu,stack": {"stack", "stack-eu"},
		" ,a,,b ":               {"a", "b"},
	}
	for in, want := range cases {
		if got := (Options{WatchNamespace: in}).watchNamespaces(); !slices.Equal(got, want) {
			t.Errorf("watchNamespaces(%q) = %q, want %q", in, got, want)
		}
	}
}
