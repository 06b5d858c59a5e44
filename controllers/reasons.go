package controllers

import (
	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
)

// Condition reasons set by the StackUser reconciler. CamelCase, as metav1.Condition asks.
const (
	// ReasonSynced: the site shows what the StackUser asks for.
	ReasonSynced = "Synced"
	// ReasonSettingsNotFound: the ScimSettings named in spec.settingsRef does not exist.
	ReasonSettingsNotFound = "SettingsNotFound"
	// ReasonTenantDisabled: the tenant's ScimSettings has enabled: false.
	ReasonTenantDisabled = "TenantDisabled"
	// ReasonSiteTokenNotFound: the site token Secret (or its key) is missing or empty.
	ReasonSiteTokenNotFound = "SiteTokenNotFound"
	// ReasonSiteConfigInvalid: the tenant's site settings cannot be used (e.g. a bad URL).
	ReasonSiteConfigInvalid = "SiteConfigInvalid"
	// ReasonSiteUnreachable: the site did not answer, throttled us or failed (5xx).
	ReasonSiteUnreachable = "SiteUnreachable"
	// ReasonSiteUnauthorized: the site rejected the token.
	ReasonSiteUnauthorized = "SiteUnauthorized"
	// ReasonSiteRequestFailed: the site refused a request (4xx), see the message.
	ReasonSiteRequestFailed = "SiteRequestFailed"
	// ReasonSiteUserNotFound: no site user exists and none can be created yet: the
	// account appears at the user's first SAML sign-in.
	ReasonSiteUserNotFound = "SiteUserNotFound"
	// ReasonSiteUserClaimed: the matching site user is already linked to another StackUser.
	ReasonSiteUserClaimed = "SiteUserClaimed"
	// ReasonRoleWriteIgnored: the site answered 200 to a role write but kept the old role
	// (its own promotion switches are off).
	ReasonRoleWriteIgnored = "RoleWriteIgnored"
	// ReasonFieldWriteIgnored: the site answered 200 to a write but kept the old value.
	ReasonFieldWriteIgnored = "FieldWriteIgnored"
	// ReasonPromotionNotAllowed: a role change waits for a promotion switch on ScimSettings.
	ReasonPromotionNotAllowed = "PromotionNotAllowed"
	// ReasonRoleInSync: the site has the role the StackUser asks for.
	ReasonRoleInSync = "RoleInSync"
	// ReasonRoleNotManaged: the StackUser has no role; the site's role is left alone.
	ReasonRoleNotManaged = "RoleNotManaged"
	// ReasonDriftReported: the site was changed by hand; by policy (Report) it is not
	// corrected.
	ReasonDriftReported = "DriftReported"
	// ReasonDriftCorrected: the site was changed by hand and has been put back.
	ReasonDriftCorrected = "DriftCorrected"
	// ReasonNoDrift: the site matches what the operator last wrote.
	ReasonNoDrift = "NoDrift"
	// ReasonOffboardingBlocked: a deleted StackUser's tenant or site token is gone, so
	// its site user cannot be deactivated; the finalizer stays.
	ReasonOffboardingBlocked = "OffboardingBlocked"
	// ReasonOffboardingSkipped: a deleted StackUser was released without touching the
	// site because of scimv1.SkipOffboardingAnnotation.
	ReasonOffboardingSkipped = "OffboardingSkipped"
	// ReasonObserveOnly: the tenant is in Observe mode (see the api package).
	ReasonObserveOnly = scimv1.ReasonObserveOnly
	// ReasonChangeHeld: the deactivation brake holds this user's change (see the api package).
	ReasonChangeHeld = scimv1.ReasonChangeHeld
	// ReasonDuplicateUserName: an older StackUser of the tenant has the same userName and
	// owns the site account.
	ReasonDuplicateUserName = "DuplicateUserName"
)

// Reasons of the ScimSettings conditions (CredentialsValid, SiteReachable, Ready).
const (
	// SettingsReasonSecretNotFound: a referenced Secret does not exist.
	SettingsReasonSecretNotFound = "SecretNotFound"
	// SettingsReasonSecretKeyMissing: a referenced Secret lacks the referenced key.
	SettingsReasonSecretKeyMissing = "SecretKeyMissing"
	// SettingsReasonTokenEmpty: a referenced key holds only whitespace.
	SettingsReasonTokenEmpty = "TokenEmpty"
	// SettingsReasonTokensFound: every referenced token is present.
	SettingsReasonTokensFound = "TokensFound"
	// SettingsReasonCredentialsInvalid: the site cannot be tested because its token is unusable.
	SettingsReasonCredentialsInvalid = "CredentialsInvalid"
	// SettingsReasonSiteAnswered: the site listed users with the configured token.
	SettingsReasonSiteAnswered = "SiteAnswered"
	// SettingsReasonSiteUnreachable: no HTTP answer (DNS, connection, TLS, timeout).
	SettingsReasonSiteUnreachable = "SiteUnreachable"
	// SettingsReasonSiteUnauthorized: the site rejected the token (401 or 403).
	SettingsReasonSiteUnauthorized = "SiteUnauthorized"
	// SettingsReasonSiteError: the site answered, but not with a SCIM user list.
	SettingsReasonSiteError = "SiteError"
	// SettingsReasonBasePathConflict: an older ScimSettings already claims the same base path.
	SettingsReasonBasePathConflict = "BasePathConflict"
	// SettingsReasonDisabled: spec.enabled is false.
	SettingsReasonDisabled = "Disabled"
	// SettingsReasonSpecInvalid: a spec field stored before the schema checked it cannot
	// be decoded (e.g. resyncPeriod: 1d); its default applies until it is fixed.
	SettingsReasonSpecInvalid = "SpecInvalid"
	// SettingsReasonChangesHeld: the deactivation brake holds changes (ChangesHeld=True).
	SettingsReasonChangesHeld = "ChangesHeld"
	// SettingsReasonNoneHeld: the brake holds nothing (ChangesHeld=False).
	SettingsReasonNoneHeld = "NoneHeld"
	// SettingsReasonAvailable: the tenant serves SCIM and reaches its site.
	SettingsReasonAvailable = "Available"
)

// Audit actions of site-side entries: internal/audit's set, shared with the SCIM server.
const (
	ActionLink       = audit.ActionLink
	ActionCreate     = audit.ActionCreate
	ActionDeactivate = audit.ActionDeactivate
	ActionReactivate = audit.ActionReactivate
	ActionRoleChange = audit.ActionRoleChange
	ActionUpdate     = audit.ActionUpdate
	ActionDelete     = audit.ActionDelete
	ActionDrift      = audit.ActionDrift
)

// controllerName names the reconciler in audit entries and events.
const controllerName = "stackuser-controller"
