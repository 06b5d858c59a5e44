package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEShowsTheLatestReport: the README's performance table is the committed report's
// table, row for row, so the figures users read are the ones `make bench` produced.
func TestREADMEShowsTheLatestReport(t *testing.T) {
	root := filepath.Join("..", "..")
	report, err := os.ReadFile(filepath.Join(root, "bench", "latest", "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, line := range strings.Split(string(report), "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		rows++
		if !strings.Contains(string(readme), line+"\n") {
			t.Errorf("README.md lacks the report row %q", line)
		}
	}
	if rows < 10 {
		t.Fatalf("bench/latest/report.md has %d table rows", rows)
	}
}
