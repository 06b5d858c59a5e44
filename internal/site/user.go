// Package site is the client of a Stack Internal Enterprise site's SCIM API: the
// downstream system the operator enforces users on. It speaks the site's dialect (lower-case
// /users, userType for the role, {"ErrorMessage"} errors, PATCH rather than PUT), rate-limits
// per tenant, honours 429 / Retry-After and retries transient failures a bounded number of
// times. Tokens never appear in its errors.
package site

import (
	"encoding/json"
	"strings"
	"unicode"

	"github.com/stackscim/stack-scim-operator/internal/clip"
)

// Role values the site knows. The site omits userType for Registered users.
const (
	RoleRegistered = "Registered"
	RoleModerator  = "Moderator"
	RoleAdmin      = "Admin"
)

// Schema URNs used on the wire.
const (
	SchemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaListResp   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
)

// User is the part of a site user the operator reads and writes.
type User struct {
	ID          string
	ExternalID  string
	UserName    string
	DisplayName string
	GivenName   string
	FamilyName  string
	// Email is the primary e-mail address (the first one when none is marked primary).
	Email  string
	Active bool
	// Role is Registered, Moderator or Admin; Registered when the site omits userType.
	Role       string
	Title      string
	Department string
	ProfileURL string
}

// WireUser is a site user as JSON on the wire.
type WireUser struct {
	Schemas     []string        `json:"schemas,omitempty"`
	ID          string          `json:"id,omitempty"`
	ExternalID  string          `json:"externalId,omitempty"`
	UserName    string          `json:"userName,omitempty"`
	DisplayName string          `json:"displayName,omitempty"`
	Name        *WireName       `json:"name,omitempty"`
	Emails      []WireEmail     `json:"emails,omitempty"`
	Active      *bool           `json:"active,omitempty"`
	UserType    string          `json:"userType,omitempty"`
	Title       string          `json:"title,omitempty"`
	Enterprise  *WireEnterprise `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,omitempty"`
	ProfileURL  string          `json:"profileUrl,omitempty"`
	Meta        *WireMeta       `json:"meta,omitempty"`
}

// WireName is the SCIM name complex attribute.
type WireName struct {
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
}

// WireEmail is one e-mail address; the site sends no type.
type WireEmail struct {
	Primary bool   `json:"primary"`
	Value   string `json:"value"`
}

// WireEnterprise is the enterprise extension as far as the site supports it.
type WireEnterprise struct {
	Department string `json:"department,omitempty"`
}

// WireMeta is the SCIM meta attribute.
type WireMeta struct {
	ResourceType string `json:"resourceType,omitempty"`
	Created      string `json:"created,omitempty"`
	Location     string `json:"location,omitempty"`
}

// WireList is a list response.
type WireList struct {
	Schemas      []string   `json:"schemas,omitempty"`
	TotalResults int        `json:"totalResults"`
	StartIndex   int        `json:"startIndex,omitempty"`
	ItemsPerPage int        `json:"itemsPerPage,omitempty"`
	Resources    []WireUser `json:"Resources"`
}

// PatchOp is one operation of a SCIM PATCH request.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Value any    `json:"value,omitempty"`
}

// PatchRequest is the body of a SCIM PATCH request.
type PatchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []PatchOp `json:"Operations"`
}

// Patch paths the site understands.
const (
	PathActive      = "active"
	PathUserType    = "userType"
	PathDisplayName = "displayName"
	PathGivenName   = "name.givenName"
	PathFamilyName  = "name.familyName"
	PathEmails      = "emails"
	PathTitle       = "title"
	PathExternalID  = "externalId"
	PathUserName    = "userName"
	PathDepartment  = SchemaEnterprise + ":department"
)

// FromWire converts a wire user.
func FromWire(w WireUser) User {
	u := User{
		ID:          w.ID,
		ExternalID:  w.ExternalID,
		UserName:    w.UserName,
		DisplayName: w.DisplayName,
		Active:      w.Active != nil && *w.Active,
		Role:        w.UserType,
		Title:       w.Title,
		ProfileURL:  w.ProfileURL,
	}
	if u.Role == "" {
		u.Role = RoleRegistered
	}
	if w.Name != nil {
		u.GivenName, u.FamilyName = w.Name.GivenName, w.Name.FamilyName
	}
	for i, e := range w.Emails {
		if e.Primary || i == 0 && u.Email == "" {
			u.Email = e.Value
		}
		if e.Primary {
			break
		}
	}
	if w.Enterprise != nil {
		u.Department = w.Enterprise.Department
	}
	return u
}

// ToWire converts a user for a create request. The role is left out: role writes go
// through PATCH and are read back, because the site may ignore them.
func (u User) ToWire() WireUser {
	active := u.Active
	w := WireUser{
		Schemas:     []string{SchemaUser},
		ExternalID:  u.ExternalID,
		UserName:    u.UserName,
		DisplayName: u.DisplayName,
		Active:      &active,
		Title:       u.Title,
	}
	if u.Role != "" && u.Role != RoleRegistered {
		w.UserType = u.Role // absent means Registered, as the site itself shows it
	}
	if u.GivenName != "" || u.FamilyName != "" {
		w.Name = &WireName{GivenName: u.GivenName, FamilyName: u.FamilyName}
	}
	if u.Email != "" {
		w.Emails = []WireEmail{{Primary: true, Value: u.Email}}
	}
	if u.Department != "" {
		w.Schemas = append(w.Schemas, SchemaEnterprise)
		w.Enterprise = &WireEnterprise{Department: u.Department}
	}
	return w
}

// Replace builds a replace operation.
func Replace(path string, value any) PatchOp { return PatchOp{Op: "replace", Path: path, Value: value} }

// EmailValue is the value of a replace of emails with one primary address.
func EmailValue(email string) []WireEmail { return []WireEmail{{Primary: true, Value: email}} }

// HasPath reports whether any operation targets path (case-insensitively).
func HasPath(ops []PatchOp, path string) bool {
	for _, op := range ops {
		if strings.EqualFold(op.Path, path) {
			return true
		}
	}
	return false
}

// errorBody is the site's error shape.
type errorBody struct {
	ErrorMessage string `json:"ErrorMessage"`
	// Some endpoints (and proxies in front of the site) answer in the SCIM error shape.
	Detail string `json:"detail"`
}

func parseErrorMessage(body []byte) string {
	var b errorBody
	msg := ""
	if json.Unmarshal(body, &b) == nil {
		msg = b.ErrorMessage
		if msg == "" {
			msg = b.Detail
		}
	}
	if msg == "" {
		msg = string(body)
	}
	// The site's text ends up in condition messages and audit entries: printable, short.
	msg = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, msg)
	return clip.String(strings.TrimSpace(msg), MaxErrorMessage)
}

// MaxErrorMessage bounds the site text kept in an Error: a site may answer with a
// page-sized ErrorMessage, and conditions allow 32 KiB.
const MaxErrorMessage = 512
