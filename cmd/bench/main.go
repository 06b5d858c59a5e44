// Command bench runs the benchmarks behind `make bench` against a real control plane, the
// real manager binary and the site simulator over HTTP, and writes report.md and
// report.json.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stackscim/stack-scim-operator/internal/bench"
	"github.com/stackscim/stack-scim-operator/internal/testenv"
)

func main() {
	var cfg bench.Config
	// BENCH_SCALE=full gives the largest runs (100,000 users with full status); the
	// default sizes keep `make bench` near 15 minutes on 2 cores.
	full := os.Getenv("BENCH_SCALE") == "full"
	fillUsers, shardUsers := 5_000, 1_000
	if full {
		fillUsers, shardUsers = 100_000, 20_000
	}
	filter := flag.String("filter-sizes", "1000,10000", "Tenant sizes at which filter latency is measured with the SCIM server alone (bare users).")
	imports := flag.String("import-sizes", "10000", "Sizes (among -filter-sizes) at which a full Okta import is timed.")
	flag.IntVar(&cfg.FillUsers, "fill-users", fillUsers, "Users of the realistic fill (full status and history, reconcilers on); 100000 with BENCH_SCALE=full.")
	flag.IntVar(&cfg.ShardUsers, "shard-users", shardUsers, "Users per shard in the two-shard run; 20000 with BENCH_SCALE=full.")
	flag.IntVar(&cfg.PostUsers, "post-users", 1000, "Users per POST-throughput run.")
	flag.IntVar(&cfg.E2EUsers, "e2e-users", 10000, "Users provisioned end to end.")
	flag.IntVar(&cfg.Concurrency, "concurrency", 8, "Parallel clients.")
	flag.IntVar(&cfg.FilterQueries, "filter-queries", 1000, "Filter requests per size and run.")
	flag.IntVar(&cfg.Repeats, "repeats", 3, "Runs of each figure.")
	flag.DurationVar(&cfg.SiteLatency, "site-latency", 20*time.Millisecond, "Latency the simulated site adds to every call.")
	flag.IntVar(&cfg.GroupMembers, "group-members", 10000, "Members of the group pushed in the groups scenario (0 skips it).")
	flag.IntVar(&cfg.ProbeUsers, "probe-users", 40, "Users created one after another per time-to-site run (0 skips it).")
	scenarios := flag.String("scenarios", "", "Comma-separated scenarios to run (read, groups, fill, e2e, latency, shards); empty runs all but groups.")
	flag.StringVar(&cfg.Out, "out", "bench/out", "Folder for the report.")
	render := flag.String("render", "", "Run nothing: rewrite report.md of this report folder from its report.json and put its table in README.md's performance section.")
	merge := flag.String("merge", "", "Run nothing: put the figures of this report folder into the report in -out (same ids replaced, the source noted), then render -out as -render does.")
	flag.Parse()
	if *merge != "" {
		if err := mergeReport(*merge, cfg.Out); err != nil {
			log.Fatal(err)
		}
		*render = cfg.Out
	}
	if *render != "" {
		if err := renderReport(*render, filepath.Join(testenv.RepoRoot(), "README.md")); err != nil {
			log.Fatal(err)
		}
		return
	}
	cfg.Repo = testenv.RepoRoot()
	var err error
	if cfg.FilterSizes, err = ints(*filter); err == nil {
		cfg.ImportSizes, err = ints(*imports)
	}
	if err != nil {
		log.Fatal(err)
	}
	for _, sc := range strings.Split(*scenarios, ",") {
		if sc = strings.TrimSpace(sc); sc != "" {
			cfg.Scenarios = append(cfg.Scenarios, sc)
		}
	}
	if !filepath.IsAbs(cfg.Out) {
		cfg.Out = filepath.Join(cfg.Repo, cfg.Out)
	}
	report, err := bench.Run(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := report.Write(cfg.Out); err != nil {
		log.Fatal(err)
	}
	fmt.Print(report.Markdown())
	fmt.Fprintf(os.Stderr, "report written to %s\n", cfg.Out)
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("bad size %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no sizes")
	}
	return out, nil
}

// mergeReport puts the figures of report folder src into report folder dst.
func mergeReport(src, dst string) error {
	from, err := bench.Read(filepath.Join(src, "report.json"))
	if err != nil {
		return err
	}
	into, err := bench.Read(filepath.Join(dst, "report.json"))
	if err != nil {
		return err
	}
	into.Merge(from, filepath.ToSlash(filepath.Clean(src)))
	return into.Write(dst)
}

// renderReport regenerates dir/report.md from dir/report.json and the README's table.
func renderReport(dir, readme string) error {
	r, err := bench.Read(filepath.Join(dir, "report.json"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644); err != nil {
		return err
	}
	doc, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	i := strings.Index(string(doc), "\n## Performance\n")
	if i < 0 {
		return fmt.Errorf("%s has no performance section", readme)
	}
	rest, err := r.ReplaceTable(string(doc[i:]))
	if err != nil {
		return err
	}
	return os.WriteFile(readme, []byte(string(doc[:i])+rest), 0o644)
}
