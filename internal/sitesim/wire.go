package sitesim

import (
	"time"
)

const (
	schemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

// wireUser is a user as clients send it; pointers tell "left out" from "empty".
type wireUser struct {
	ExternalID  *string     `json:"externalId"`
	UserName    string      `json:"userName"`
	DisplayName *string     `json:"displayName"`
	Name        *wireName   `json:"name"`
	Emails      []wireEmail `json:"emails"`
	Active      *bool       `json:"active"`
	UserType    *string     `json:"userType"`
	Title       *string     `json:"title"`
	Enterprise  *struct {
		Department *string `json:"department"`
	} `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
}

type wireName struct {
	GivenName  *string `json:"givenName"`
	FamilyName *string `json:"familyName"`
}

type wireEmail struct {
	Primary bool   `json:"primary"`
	Value   string `json:"value"`
}

func primaryEmail(es []wireEmail) string {
	for _, e := range es {
		if e.Primary {
			return e.Value
		}
	}
	if len(es) > 0 {
		return es[0].Value
	}
	return ""
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// replaceInto sets every attribute of u from in, clearing those left out (PUT, POST).
// active and userType are handled by the caller.
func (in wireUser) replaceInto(u *User) {
	u.UserName = in.UserName
	u.ExternalID = deref(in.ExternalID)
	u.DisplayName = deref(in.DisplayName)
	u.GivenName, u.FamilyName = "", ""
	if in.Name != nil {
		u.GivenName, u.FamilyName = deref(in.Name.GivenName), deref(in.Name.FamilyName)
	}
	u.Email = primaryEmail(in.Emails)
	u.Title = deref(in.Title)
	u.Department = ""
	if in.Enterprise != nil {
		u.Department = deref(in.Enterprise.Department)
	}
}

// mergeInto sets the attributes in carries (a PATCH replace without a path). userType is
// handled by the caller.
func (in wireUser) mergeInto(u *User) {
	if in.UserName != "" {
		u.UserName = in.UserName
	}
	if in.ExternalID != nil {
		u.ExternalID = *in.ExternalID
	}
	if in.DisplayName != nil {
		u.DisplayName = *in.DisplayName
	}
	if in.Name != nil {
		if in.Name.GivenName != nil {
			u.GivenName = *in.Name.GivenName
		}
		if in.Name.FamilyName != nil {
			u.FamilyName = *in.Name.FamilyName
		}
	}
	if in.Emails != nil {
		u.Email = primaryEmail(in.Emails)
	}
	if in.Active != nil {
		u.Active = *in.Active
	}
	if in.Title != nil {
		u.Title = *in.Title
	}
	if in.Enterprise != nil && in.Enterprise.Department != nil {
		u.Department = *in.Enterprise.Department
	}
}

// render writes a user as the site does: userType only for moderators and admins, emails
// without type, profileUrl and meta{created,location}.
func render(u *User, base string) map[string]any {
	m := map[string]any{
		"schemas":    []string{schemaUser},
		"id":         u.ID,
		"userName":   u.UserName,
		"active":     u.Active,
		"profileUrl": base + "/accounts/" + u.ID,
		"meta": map[string]any{
			"resourceType": "User",
			"created":      u.Created.UTC().Format(time.RFC3339),
			"location":     base + BasePath + "/users/" + u.ID,
		},
	}
	if u.ExternalID != "" {
		m["externalId"] = u.ExternalID
	}
	if u.DisplayName != "" {
		m["displayName"] = u.DisplayName
	}
	if u.GivenName != "" || u.FamilyName != "" {
		m["name"] = map[string]string{"givenName": u.GivenName, "familyName": u.FamilyName}
	}
	if u.Email != "" {
		m["emails"] = []map[string]any{{"primary": true, "value": u.Email}}
	}
	if u.Role != "" && u.Role != RoleRegistered {
		m["userType"] = u.Role
	}
	if u.Title != "" {
		m["title"] = u.Title
	}
	if u.Department != "" {
		m["schemas"] = []string{schemaUser, schemaEnterprise}
		m[schemaEnterprise] = map[string]string{"department": u.Department}
	}
	return m
}
