// Package version holds what `make image` and `make release` stamp into the binary with
// -ldflags -X: the release version, the git commit and the build date.
package version

import (
	"fmt"
	"runtime"
)

// Set with -ldflags "-X github.com/stackscim/stack-scim-operator/internal/version.Version=...".
var (
	// Version is the release version, equal to the image tag and the chart's appVersion.
	Version = "dev"
	// Commit is the git commit the binary was built from.
	Commit = "unknown"
	// Date is the build date in RFC 3339 (the commit date for reproducible builds).
	Date = "unknown"
)

// String is the line `manager --version` prints.
func String() string {
	return fmt.Sprintf("stack-scim-operator %s (commit %s, built %s, %s, %s/%s)",
		Version, Commit, Date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
