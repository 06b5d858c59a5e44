// Package faults holds fault-injection and hostile-input tests of the operator as it
// ships: the real manager (internal/manager) runs in-process against a real
// kube-apiserver and etcd (internal/testenv), the site simulator (internal/sitesim) is
// reached over real HTTP, and identity-provider traffic goes through the SCIM listener.
//
// What is covered: site throttling, 5xx answers and timeouts while users are provisioned
// (everything converges, nothing is duplicated); API-server write conflicts under
// concurrent SCIM PATCHes of one user (no lost update, one audit entry per change); bearer
// token rotation under load (no valid request refused); a corpus of malformed and hostile
// requests (always a 4xx SCIM error, never a 5xx or a write); and FuzzSCIMRequest, which
// sends arbitrary requests through the SCIM server's http.Handler in-process, on
// controller-runtime's fake client so that it starts in milliseconds.
//
// The package has tests only; this file exists for the package comment.
package faults
