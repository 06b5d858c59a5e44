package resource

// Discovery documents (RFC 7643 sections 5-7). They are built per request because
// meta.location depends on the tenant's base URL.

type attrDef = map[string]any

func attribute(name, typ, desc string, multi, required bool, mutability, returned, uniqueness string, sub ...attrDef) attrDef {
	a := attrDef{
		"name":        name,
		"type":        typ,
		"multiValued": multi,
		"description": desc,
		"required":    required,
		"caseExact":   false,
		"mutability":  mutability,
		"returned":    returned,
		"uniqueness":  uniqueness,
	}
	if len(sub) > 0 {
		l := make([]any, len(sub))
		for i, s := range sub {
			l[i] = s
		}
		a["subAttributes"] = l
	}
	return a
}

func str(name, desc string) attrDef {
	return attribute(name, "string", desc, false, false, "readWrite", "default", "none")
}

func multiSubs(kind string) []attrDef {
	return []attrDef{
		attribute("value", "string", "The "+kind+" value.", false, true, "readWrite", "default", "none"),
		str("display", "A human-readable name."),
		str("type", "A label such as work, home or other."),
		attribute("primary", "boolean", "Marks the preferred value; at most one is primary.", false, false, "readWrite", "default", "none"),
	}
}

func roleAttr() attrDef {
	a := str(RoleAttribute, "The user's Stack Internal Enterprise role: Registered, Moderator or Admin. Absent: the role is not managed by the identity provider.")
	a["canonicalValues"] = []any{"Registered", "Moderator", "Admin"}
	return a
}

func userAttributes() []any {
	id := attribute("id", "string", "Server-assigned, stable identifier (the StackUser's name).", false, false, "readOnly", "always", "server")
	id["caseExact"] = true
	ext := str("externalId", "The identity provider's identifier for the user.")
	ext["caseExact"] = true
	userType := str("userType", "The user's Stack Internal Enterprise role (Registered, Moderator or Admin); same as stackUserType.")
	userType["canonicalValues"] = []any{"Registered", "Moderator", "Admin"}
	password := attribute("password", "string", "Accepted and discarded: never stored or returned.", false, false, "writeOnly", "never", "none")
	groups := attribute("groups", "complex", "The groups the user belongs to (read-only; change membership through /Groups).", true, false, "readOnly", "default", "none",
		str("value", "Group id."), str("display", "Group name."))
	attrs := []attrDef{
		id, ext,
		attribute("userName", "string", "Unique identifier the user signs in with; unique case-insensitively, case preserved.", false, true, "readWrite", "always", "server"),
		attribute("name", "complex", "The components of the user's real name.", false, false, "readWrite", "default", "none",
			str("formatted", "Full name."), str("familyName", "Family name."), str("givenName", "Given name."),
			str("middleName", "Middle name(s)."), str("honorificPrefix", "Honorific prefix."), str("honorificSuffix", "Honorific suffix.")),
		str("displayName", "The name shown on the site."),
		str("nickName", "Casual name."),
		str("profileUrl", "URL of the user's profile elsewhere."),
		str("title", "The user's job title."),
		userType,
		str("preferredLanguage", "Preferred language, e.g. en."),
		str("locale", "Locale, e.g. en-US."),
		str("timezone", "IANA time zone, e.g. Europe/Berlin."),
		attribute("active", "boolean", "Whether the user may sign in; false deactivates the user on the site.", false, false, "readWrite", "default", "none"),
		password,
		attribute("emails", "complex", "E-mail addresses.", true, false, "readWrite", "default", "none", multiSubs("e-mail")...),
		attribute("phoneNumbers", "complex", "Telephone numbers.", true, false, "readWrite", "default", "none", multiSubs("phone number")...),
		groups,
	}
	out := make([]any, len(attrs))
	for i, a := range attrs {
		out[i] = a
	}
	return out
}

func operatorAttributes() []any {
	managed := attribute("managed", "boolean", "False for an existing site account that no StackUser describes: shown for import, never changed on the site; a PUT or PATCH of it creates its StackUser (linking it).", false, false, "readOnly", "default", "none")
	siteID := attribute("siteId", "string", "The account's id on the site.", false, false, "readOnly", "default", "none")
	siteID["caseExact"] = true
	return []any{managed, siteID}
}

func meta(resourceType, location string) map[string]any {
	return map[string]any{"resourceType": resourceType, "location": location}
}

// Schemas returns the schema definitions the server supports, keyed by URN in order.
func Schemas(baseURL string) []map[string]any {
	enterprise := []any{
		str("employeeNumber", "Organisation's identifier for the user."),
		str("costCenter", "Cost center."),
		str("organization", "Organisation."),
		str("division", "Division."),
		str("department", "The user's department."),
		attribute("manager", "complex", "The user's manager.", false, false, "readWrite", "default", "none",
			str("value", "SCIM id of the manager."), str("displayName", "Manager's display name.")),
	}
	groupID := attribute("id", "string", "Server-assigned, stable identifier (the StackGroup's name).", false, false, "readOnly", "always", "server")
	groupID["caseExact"] = true
	groupExt := str("externalId", "The identity provider's identifier for the group.")
	groupExt["caseExact"] = true
	memberValue := attribute("value", "string", "The id of a user of this tenant.", false, true, "immutable", "default", "none")
	memberValue["caseExact"] = true
	group := []any{
		groupID, groupExt,
		attribute("displayName", "string", "Group name; unique in the tenant regardless of case. ScimSettings spec.groupRoles maps it to a role.", false, true, "readWrite", "default", "server"),
		attribute("members", "complex", "The group's members: users only (no nested groups).", true, false, "readWrite", "default", "none",
			memberValue, attribute("display", "string", "The member's name.", false, false, "readOnly", "default", "none"),
			attribute("$ref", "reference", "URI of the member.", false, false, "immutable", "default", "none"),
			attribute("type", "string", "Always User.", false, false, "immutable", "default", "none")),
	}
	mk := func(id, name, desc string, attrs []any) map[string]any {
		return map[string]any{
			"schemas":     []any{SchemaSchema},
			"id":          id,
			"name":        name,
			"description": desc,
			"attributes":  attrs,
			"meta":        meta("Schema", baseURL+"/Schemas/"+id),
		}
	}
	return []map[string]any{
		mk(SchemaUser, "User", "User account", userAttributes()),
		mk(SchemaEnterprise, "EnterpriseUser", "Enterprise user", enterprise),
		mk(SchemaStack, "StackUser", "Stack Internal Enterprise attributes: stackUserType is the user's role on the site.", []any{roleAttr()}),
		mk(SchemaOperator, "StackScimUser", "How the operator holds the user (read-only, never stored): managed false marks an existing site account no StackUser describes yet, listed so an identity provider's import can match it; a PUT or PATCH of it links it.", operatorAttributes()),
		mk(SchemaGroup, "Group", "Group (Okta Push Groups, Entra group provisioning); the site receives no groups", group),
	}
}

// ResourceTypes returns the resource types the server serves.
func ResourceTypes(baseURL string) []map[string]any {
	return []map[string]any{
		{
			"schemas":     []any{SchemaResourceType},
			"id":          "User",
			"name":        "User",
			"endpoint":    "/Users",
			"description": "User account",
			"schema":      SchemaUser,
			"schemaExtensions": []any{
				map[string]any{"schema": SchemaEnterprise, "required": false},
				map[string]any{"schema": SchemaStack, "required": false},
				map[string]any{"schema": SchemaOperator, "required": false},
			},
			"meta": meta("ResourceType", baseURL+"/ResourceTypes/User"),
		},
		{
			"schemas":     []any{SchemaResourceType},
			"id":          "Group",
			"name":        "Group",
			"endpoint":    "/Groups",
			"description": "Group (Okta Push Groups, Entra group provisioning); the site receives no groups",
			"schema":      SchemaGroup,
			"meta":        meta("ResourceType", baseURL+"/ResourceTypes/Group"),
		},
	}
}

// ServiceProviderConfig describes the server's capabilities.
func ServiceProviderConfig(baseURL string, maxResults int, maxPayload int64) map[string]any {
	return map[string]any{
		"schemas":          []any{SchemaServiceProviderConfig},
		"documentationUri": "https://github.com/stackscim/stack-scim-operator",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": maxPayload},
		"filter":           map[string]any{"supported": true, "maxResults": maxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "OAuth Bearer Token",
			"description": "Authentication with the tenant's bearer token (Authorization: Bearer <token>).",
			"primary":     true,
		}},
		"meta": meta("ServiceProviderConfig", baseURL+"/ServiceProviderConfig"),
	}
}
