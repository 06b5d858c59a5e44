// Package bench holds the benchmark harness behind `make bench`: scenarios run against a
// real control plane, the real manager code and the site simulator over HTTP, and a
// report (markdown and JSON) with the machine, the commit and each figure's median and
// spread.
package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Figure is one measured quantity with its repeated samples.
type Figure struct {
	// ID names the figure stably across runs and sizes (e.g. "read.filter.p99.max"), so
	// tools can follow it from report to report.
	ID string `json:"id"`
	// Name says what was measured, e.g. "filter latency p99 @ 100000 users".
	Name string `json:"name"`
	// Unit of the samples, e.g. "ms", "users/s", "MiB".
	Unit string `json:"unit"`
	// Samples are the values of the repeated runs.
	Samples []float64 `json:"samples"`
	// Median and Min/Max summarise Samples.
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Target is the goal, in words ("< 5 ms"); Met says whether the median meets it.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
	// Note explains a missed target or how the figure was taken.
	Note string `json:"note,omitempty"`
}

// Summarise fills Median, Min and Max from Samples.
func (f *Figure) Summarise() {
	if len(f.Samples) == 0 {
		return
	}
	s := slices.Clone(f.Samples)
	slices.Sort(s)
	f.Min, f.Max = s[0], s[len(s)-1]
	if n := len(s); n%2 == 1 {
		f.Median = s[n/2]
	} else {
		f.Median = (s[n/2-1] + s[n/2]) / 2
	}
}

// Check records whether the median meets a target: below (lower is better) or above.
func (f *Figure) Check(target string, limit float64, lowerIsBetter bool) {
	f.Summarise()
	met := f.Median >= limit
	if lowerIsBetter {
		met = f.Median <= limit
	}
	f.Target, f.Met = target, &met
}

// Explain sets the note of a figure that misses its target: what the gap comes from.
func (f *Figure) Explain(why string) {
	if f.Met != nil && !*f.Met {
		f.Note = strings.TrimPrefix(f.Note+"; missed: "+why, "; ")
	}
}

// Machine describes where a report was taken.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGiB int    `json:"memoryGiB"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
}

// Report is the output of one `make bench` run.
type Report struct {
	Commit   string            `json:"commit"`
	Started  time.Time         `json:"started"`
	Duration string            `json:"duration"`
	Machine  Machine           `json:"machine"`
	Sizes    map[string]int    `json:"sizes"`
	Figures  []*Figure         `json:"figures"`
	Notes    []string          `json:"notes,omitempty"`
	Extra    map[string]string `json:"extra,omitempty"`
}

// DescribeMachine reads the CPU model, cores and memory of this machine.
func DescribeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryGiB = int(math.Round(float64(kb) / (1 << 20)))
		}
	}
	return m
}

// Commit is the checked-out commit, marked dirty when the tree has changes.
func Commit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "-dirty"
	}
	return c
}

// Write stores the report as report.json and report.md in dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range r.Figures {
		f.Summarise()
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644)
}

// Markdown renders the report as a table.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# stack-scim-operator benchmarks\n\n")
	fmt.Fprintf(&b, "- commit: `%s`, started %s, took %s\n", r.Commit, r.Started.UTC().Format(time.RFC3339), r.Duration)
	fmt.Fprintf(&b, "- machine: %s, %d cores, %d GiB, %s, %s\n", r.Machine.CPU, r.Machine.Cores, r.Machine.MemoryGiB, r.Machine.GoVersion, r.Machine.OS)
	keys := make([]string, 0, len(r.Sizes))
	for k := range r.Sizes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var sizes []string
	for _, k := range keys {
		sizes = append(sizes, fmt.Sprintf("%s=%d", k, r.Sizes[k]))
	}
	fmt.Fprintf(&b, "- sizes: %s\n\n", strings.Join(sizes, ", "))
	b.WriteString(r.Table())
	var notes []string
	for _, f := range r.Figures {
		if f.Note != "" {
			notes = append(notes, fmt.Sprintf("- %s: %s", f.Name, f.Note))
		}
	}
	for _, n := range r.Notes {
		notes = append(notes, "- "+n)
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, "\n## Notes\n\n%s\n", strings.Join(notes, "\n"))
	}
	return b.String()
}

// Table is the report's figures as a markdown table, one row per figure.
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| id | figure | median | min | max | runs | target | met |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		met := ""
		if f.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*f.Met]
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s %s | %s | %s | %d | %s | %s |\n", f.ID, f.Name, num(f.Median), f.Unit, num(f.Min), num(f.Max), len(f.Samples), f.Target, met)
	}
	return b.String()
}

// Merge puts other's figures into r, replacing those with the same id and placing new
// ones after their scenario's (the id's first part), and notes where they come from: a
// report can combine a default run with a larger one (BENCH_SCALE=full) taken from
// another commit, and says so.
func (r *Report) Merge(other *Report, from string) {
	ids := make([]string, 0, len(other.Figures))
	for _, f := range other.Figures {
		ids = append(ids, "`"+f.ID+"`")
		if i := slices.IndexFunc(r.Figures, func(g *Figure) bool { return g.ID == f.ID }); i >= 0 {
			r.Figures[i] = f
			continue
		}
		scenario, _, _ := strings.Cut(f.ID, ".")
		at := len(r.Figures)
		for i, g := range r.Figures {
			if s, _, _ := strings.Cut(g.ID, "."); s == scenario {
				at = i + 1
			}
		}
		r.Figures = slices.Insert(r.Figures, at, f)
	}
	keys := make([]string, 0, len(other.Sizes))
	for k, v := range other.Sizes {
		keys = append(keys, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(keys)
	r.Notes = append(r.Notes, fmt.Sprintf("%s: from %s (commit `%s`, started %s, took %s; sizes %s)",
		strings.Join(ids, ", "), from, other.Commit, other.Started.UTC().Format(time.RFC3339), other.Duration, strings.Join(keys, ", ")))
}

// Read loads a report.json.
func Read(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &Report{}
	return r, json.Unmarshal(b, r)
}

// ReplaceTable puts the report's table in place of the first figure table (a line that
// starts with "| id | figure |" or "| figure |" and the table lines after it) in doc.
func (r *Report) ReplaceTable(doc string) (string, error) {
	lines := strings.SplitAfter(doc, "\n")
	start := slices.IndexFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, "| id | figure |") || strings.HasPrefix(l, "| figure |")
	})
	if start < 0 {
		return "", fmt.Errorf("no figure table found")
	}
	end := start
	for end < len(lines) && strings.HasPrefix(lines[end], "|") {
		end++
	}
	return strings.Join(lines[:start], "") + r.Table() + strings.Join(lines[end:], ""), nil
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// Percentile returns the p-th percentile (0..100) of durations, in milliseconds.
func Percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}
