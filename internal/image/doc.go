// Package image holds the tests of the container image `make image` builds: what is in
// the OCI archive users load, for every platform, and that its binary runs.
package image
