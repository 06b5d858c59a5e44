package e2e_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestInstall_managerRunsWithTheChartsRBAC: the manager runs as the chart's
// ServiceAccount (a TokenRequest token, no admin rights) on an API server that enforces
// RBAC, with the rules the chart renders, in both install modes. It serves an Okta flow
// end to end (cache, leader election, StackUser writes, status, Events, the site). With
// watchNamespace it cannot read a Secret outside the tenant's namespace; in neither mode
// can it change a Secret. Its metrics answer only callers the chart's metrics-reader
// ClusterRole admits.
//
// The cluster-wide manager sees every namespace of the shared control plane. envtest has
// no namespace controller, so earlier tests' tenants would stay for it to reconcile (the
// 1,000 users of kill_test.go against a stopped simulator); this file sorts before the
// others, so go test runs it first.
func TestInstall_managerRunsWithTheChartsRBAC(t *testing.T) {
	for name, watchNamespace := range map[string]bool{"cluster-wide": false, "watchNamespace": true} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			in := installChart(t, watchNamespace)
			site := startSite(t)
			st := tenant(t, in.tenantNamespace, site, nil)
			elsewhere := env.Namespace(t)
			payroll := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: elsewhere, Name: "payroll-db"}, StringData: map[string]string{"password": "hunter2"}}
			g.Expect(env.Client.Create(ctx, payroll)).To(Succeed())

			op := in.startInstalled(t)
			in.waitReady(t)
			playOktaFlow(t, newSCIMClient(op, st), site)

			as, err := kubernetes.NewForConfig(asToken(in.token))
			g.Expect(err).NotTo(HaveOccurred())
			_, err = as.CoreV1().Secrets(in.tenantNamespace).Get(ctx, "scim-token", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred(), "the tenant's token Secret is what it needs")
			if watchNamespace {
				_, err = as.CoreV1().Secrets(elsewhere).Get(ctx, payroll.Name, metav1.GetOptions{})
				g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "a Secret outside the watched namespace: %v", err)
				_, err = as.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
				g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "no cluster-wide Secret list: %v", err)
			}
			_, err = as.CoreV1().Secrets(in.tenantNamespace).Update(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: in.tenantNamespace, Name: "scim-token"}, StringData: map[string]string{"token": "x"}}, metav1.UpdateOptions{})
			g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "it never writes a Secret: %v", err)
			err = as.CoreV1().Secrets(in.tenantNamespace).Delete(ctx, "site-token", metav1.DeleteOptions{})
			g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "it never deletes a Secret: %v", err)

			expectMetricsNeedAReader(t, in)
		})
	}
}

// expectMetricsNeedAReader scrapes the manager's metrics endpoint without a token, with
// the manager's own token, and as a scraper bound to the chart's metrics-reader
// ClusterRole: 401, 403, then the stackscim_ metrics of the flow just played.
func expectMetricsNeedAReader(t *testing.T, in *installation) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	url := fmt.Sprintf("https://127.0.0.1:%d/metrics", in.metricsPort)
	// The manager serves a self-signed certificate; the chart's ServiceMonitor skips
	// verification the same way.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the manager serves metrics with a self-signed certificate in this test
	scrape := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	g.Eventually(func() int { code, _ := scrape(""); return code }, 30*time.Second, 100*time.Millisecond).Should(Equal(http.StatusUnauthorized))
	code, _ := scrape(in.token)
	g.Expect(code).To(Equal(http.StatusForbidden), "the manager's own identity is not a metrics reader")

	reader := ""
	for _, name := range in.clusterRoles {
		if strings.HasSuffix(name, "-metrics-reader") {
			reader = name
		}
	}
	g.Expect(reader).NotTo(BeEmpty(), "the chart ships a metrics-reader ClusterRole")
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: in.namespace, Name: "prometheus"}}
	g.Expect(env.Client.Create(ctx, sa)).To(Succeed())
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: in.release + "-prometheus"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: in.namespace, Name: sa.Name}},
	}
	g.Expect(env.Client.Create(ctx, crb)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), crb) })
	promToken := saToken(t, in.namespace, sa.Name)
	var body string
	g.Eventually(func() int { code, body = scrape(promToken); return code }, 30*time.Second, 100*time.Millisecond).Should(Equal(http.StatusOK))
	tenant := in.tenantNamespace + "/okta"
	for _, want := range []string{
		`stackscim_site_requests_total{method="POST",outcome="2xx",tenant="` + tenant + `"}`,
		`stackscim_site_request_duration_seconds_count{method="POST",tenant="` + tenant + `"}`,
		`stackscim_scim_requests_total{code="201",operation="POST /Users",tenant="` + tenant + `"}`,
		`stackscim_tenant_ready{tenant="` + tenant + `"}`,
		`stackscim_reconcile_backlog{tenant="` + tenant + `"}`,
	} {
		g.Expect(body).To(ContainSubstring(want))
	}
}
