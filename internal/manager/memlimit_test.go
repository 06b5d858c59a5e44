package manager

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name  string
		files []string
		want  int64
	}{
		{"v2 limit", []string{write("v2", "536870912\n")}, 536870912},
		{"v2 unlimited", []string{write("v2max", "max\n")}, 0},
		{"v1 limit when v2 is absent", []string{missing, write("v1", "1073741824\n")}, 1073741824},
		{"v1 unlimited", []string{missing, write("v1max", "9223372036854771712\n")}, 0},
		{"no cgroup files", []string{missing}, 0},
	} {
		if got := cgroupMemoryLimit(tc.files); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}
