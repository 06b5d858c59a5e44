package manager

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryLimitFiles hold the container's memory limit: cgroup v2, then v1.
var cgroupMemoryLimitFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// SetMemoryLimit sets the Go runtime's soft memory limit to ratio of the container's
// memory limit and returns it in bytes; 0 when it sets none (ratio <= 0, GOMEMLIMIT set,
// or no limit). The informer cache is most of the heap, and by default (GOGC=100) the
// heap grows to twice the live data before a collection: a pod whose cache fills more
// than half its limit would be OOM-killed although its data fits. Near the soft limit
// the GC collects sooner instead.
func SetMemoryLimit(ratio float64) int64 {
	if ratio <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit := cgroupMemoryLimit(cgroupMemoryLimitFiles)
	if limit <= 0 {
		return 0
	}
	soft := int64(float64(limit) * min(ratio, 1))
	debug.SetMemoryLimit(soft)
	return soft
}

// cgroupMemoryLimit reads the first of files that exists; 0 when it says unlimited
// ("max" in v2, a number near 2^63 in v1) or cannot be read.
func cgroupMemoryLimit(files []string) int64 {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || v <= 0 || v >= 1<<62 {
			return 0
		}
		return v
	}
	return 0
}
