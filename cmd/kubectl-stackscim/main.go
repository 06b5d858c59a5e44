// Command kubectl-stackscim is the kubectl plugin of stack-scim-operator: on PATH it runs as
// `kubectl stackscim`. `plan` prints each tenant's plan (what the operator would change on
// the site in Observe mode, and what the deactivation brake holds) and exits 0 when there
// is nothing to change, 2 when there is, 1 on error or when the plan is incomplete, so a
// GitOps pipeline can gate on it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/stackscim/stack-scim-operator/internal/plan"
	"github.com/stackscim/stack-scim-operator/internal/version"
)

// Exit codes: a GitOps gate tells "nothing to do" from "changes to review" from "broken".
const (
	exitNoChanges = 0
	exitError     = 1
	exitChanges   = 2
)

const (
	// pollInterval is how often --wait reads the plan again.
	pollInterval = time.Second
	// requestTimeout bounds each API request, so an unreachable server is an error, not a
	// hang.
	requestTimeout = 30 * time.Second
)

func main() {
	// controller-runtime's client would otherwise warn that no logger was set.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `kubectl stackscim: stack-scim-operator's kubectl plugin.

Usage:
  kubectl stackscim plan [NAME] [-n NAMESPACE | -A] [-o text|json] [--wait DURATION]
  kubectl stackscim version

plan prints what the operator would change on each tenant's site (Observe mode) and the
changes the deactivation brake holds. NAME is a ScimSettings; without it, every tenant of
the namespace. Exit status: 0 no changes, 2 changes planned or held, 1 error or plan
incomplete (users not yet evaluated; --wait polls until they are).

Flags of plan:
`

// run is the whole command; main only wires it to the process.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage+planFlags(io.Discard, new(options)).FlagUsages())
		return exitError
	}
	switch args[0] {
	case "plan":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		return runPlan(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "kubectl-stackscim:", version.String())
		return exitNoChanges
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage+planFlags(io.Discard, new(options)).FlagUsages())
		return exitNoChanges
	default:
		fmt.Fprintf(stderr, "error: unknown command %q; the commands are plan and version (see --help)\n", args[0])
		return exitError
	}
}

// options are plan's flags.
type options struct {
	namespace     string
	allNamespaces bool
	kubeconfig    string
	context       string
	output        string
	wait          time.Duration
}

func planFlags(out io.Writer, o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("plan", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVarP(&o.namespace, "namespace", "n", "", "Namespace of the tenants (default: the kubeconfig context's namespace).")
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "Every tenant in every namespace.")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).")
	fs.StringVar(&o.context, "context", "", "The kubeconfig context to use.")
	fs.StringVarP(&o.output, "output", "o", "text", "Output format: text or json.")
	fs.DurationVar(&o.wait, "wait", 0, "Wait up to this long (e.g. 2m) for the operator to evaluate every user, instead of failing at once.")
	return fs
}

func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := planFlags(stderr, &o)
	fs.Usage = func() {} // errors say what is wrong; --help prints the usage below
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(stdout, usage+fs.FlagUsages())
			return exitNoChanges
		}
		fmt.Fprintln(stderr, "error:", err)
		return exitError
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "error: "+format+"\n", a...)
		return exitError
	}
	if fs.NArg() > 1 {
		return fail("plan takes at most one ScimSettings name, got %q", fs.Args())
	}
	name := fs.Arg(0)
	if o.output != "text" && o.output != "json" {
		return fail("--output must be text or json, not %q", o.output)
	}
	if o.allNamespaces && name != "" {
		return fail("a ScimSettings cannot be named across all namespaces: drop -A or NAME")
	}
	if o.allNamespaces && o.namespace != "" {
		return fail("-n and -A exclude each other")
	}
	if o.wait < 0 {
		return fail("--wait must not be negative")
	}

	// The same loading rules as kubectl: --kubeconfig, else $KUBECONFIG (a list), else
	// ~/.kube/config; --context and the context's namespace.
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return fail("loading kubeconfig: %v", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = requestTimeout
	}
	ns := o.namespace
	if ns == "" && !o.allNamespaces {
		if ns, _, err = cc.Namespace(); err != nil {
			return fail("reading the namespace from kubeconfig: %v", err)
		}
	}
	if o.allNamespaces {
		ns = ""
	}
	src, err := newSource(cfg)
	if err != nil {
		return fail("%v", err)
	}

	p, err := readPlan(ctx, src, scope{namespace: ns, name: name}, o.wait, stderr)
	if err != nil {
		return fail("%v", err)
	}
	render := plan.Text
	if o.output == "json" {
		render = plan.JSON
	}
	if err := render(stdout, p); err != nil {
		return fail("writing the plan: %v", err)
	}
	if !p.Complete() {
		hint := "is the operator running? Retry, or pass --wait 2m"
		if o.wait > 0 {
			hint = fmt.Sprintf("still so after waiting %s; is the operator running?", o.wait)
		}
		return fail("plan incomplete (%s): %s", hint, incompleteReasons(p))
	}
	if p.Changed() {
		return exitChanges
	}
	return exitNoChanges
}

// readPlan reads the plan once, or with wait > 0 until it is complete or wait has passed;
// then it returns the last plan read (Complete says which).
func readPlan(ctx context.Context, src *source, sc scope, waitFor time.Duration, stderr io.Writer) (*plan.Plan, error) {
	p, err := src.plan(ctx, sc)
	if err != nil || p.Complete() || waitFor == 0 {
		return p, err
	}
	fmt.Fprintf(stderr, "waiting up to %s for the operator to evaluate the plan (%s)...\n", waitFor, incompleteReasons(p))
	err = wait.PollUntilContextTimeout(ctx, pollInterval, waitFor, false, func(context.Context) (bool, error) {
		// Each read runs under ctx, not the poll's deadline: a read started in time ends
		// (within the request timeout) rather than failing half-way as an error.
		next, err := src.plan(ctx, sc)
		if err != nil {
			return false, err
		}
		p = next
		return p.Complete(), nil
	})
	// Interrupted: the wait ran out (or Ctrl-C); the caller reports the plan incomplete.
	if err != nil && !wait.Interrupted(err) {
		return nil, err
	}
	return p, nil
}

// incompleteReasons says, per tenant, why the plan is incomplete.
func incompleteReasons(p *plan.Plan) string {
	var why []string
	for i := range p.Tenants {
		if r := p.Tenants[i].IncompleteReason(); r != "" {
			why = append(why, fmt.Sprintf("%s/%s: %s", p.Tenants[i].Namespace, p.Tenants[i].Name, r))
		}
	}
	return strings.Join(why, "; ")
}
