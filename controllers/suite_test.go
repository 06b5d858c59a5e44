package controllers_test

import (
	"os"
	"testing"

	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

// testEnv is the control plane shared by every test of the package; each test works in
// its own namespace (testEnv.Namespace) and starts the managers it needs.
var testEnv *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m, func(e *testenv.Env) { testEnv = e }))
}
