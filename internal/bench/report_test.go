package bench

import (
	"strings"
	"testing"
	"time"
)

// TestReport_mergeReplacesByIDAndSaysWhereFiguresComeFrom: a figure of the merged report
// replaces the one with its id, a new one joins its scenario's figures, and a note names
// the source run.
func TestReport_mergeReplacesByIDAndSaysWhereFiguresComeFrom(t *testing.T) {
	r := &Report{Figures: []*Figure{{ID: "read.rss", Median: 1}, {ID: "fill.rss", Median: 2}, {ID: "e2e.time", Median: 3}}}
	full := &Report{Commit: "abc", Started: time.Date(2026, 11, 29, 11, 0, 0, 0, time.UTC), Duration: "41m",
		Sizes:   map[string]int{"fillUsers": 100000},
		Figures: []*Figure{{ID: "fill.rss", Median: 20}, {ID: "fill.heap_per_user", Median: 4}}}
	r.Merge(full, "bench/fill-100k")
	var ids []string
	for _, f := range r.Figures {
		ids = append(ids, f.ID)
	}
	if got, want := strings.Join(ids, " "), "read.rss fill.rss fill.heap_per_user e2e.time"; got != want {
		t.Fatalf("figures %q, want %q", got, want)
	}
	if r.Figures[1].Median != 20 {
		t.Errorf("fill.rss was not replaced: %v", r.Figures[1].Median)
	}
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "bench/fill-100k (commit `abc`") || !strings.Contains(r.Notes[0], "fillUsers=100000") {
		t.Errorf("notes %q", r.Notes)
	}
}
