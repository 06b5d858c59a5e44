// Package scim is the operator's SCIM 2.0 server (RFC 7643/7644) for identity providers
// such as Okta and Microsoft Entra ID. It is split into small packages:
//
//   - filter: normalises what IdPs send (Entra's unquoted values and
//     `emails[type eq "work"].value eq "x"`), parses with github.com/scim2/filter-parser/v2
//     and evaluates filters against SCIM documents;
//   - patch: the atomic PATCH engine on generic JSON documents;
//   - resource: StackUser spec <-> SCIM User document, role extraction, discovery
//     documents (the vendor extension urn:ietf:params:scim:schemas:extension:stackoverflow:2.0:User
//     carries `stackUserType`);
//   - server: HTTP routing per tenant base path, bearer-token auth, handlers, paging,
//     limits, metrics and the throttled ScimSettings status writer;
//   - scimerr: the SCIM error type shared by the others.
//
// Users are StackUser objects: the SCIM id is the object name (u-<hash of tenant and
// lower-cased userName> for POSTs, so duplicate POSTs race for one name), reads come from
// the informer cache through field indexes, and writes answer once stored, without waiting
// for the downstream site.
package scim
