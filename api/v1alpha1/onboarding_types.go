package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mode says whether the operator writes to the site.
// +kubebuilder:validation:Enum=Enforce;Observe
type Mode string

const (
	// ModeEnforce brings the site in line with the StackUsers (the default).
	ModeEnforce Mode = "Enforce"
	// ModeObserve writes nothing to the site: every StackUser shows the changes Enforce
	// would make, and the ScimSettings status sums them up. For onboarding a site that
	// already has accounts: read the plan, then switch to Enforce.
	ModeObserve Mode = "Observe"
)

// SafetySpec holds the brakes on changes that lock people out.
type SafetySpec struct {
	// maxDeactivationsPerHour caps the deactivations and demotions sent to the site in
	// any rolling hour; 0 means no limit. Changes past the cap are held (the user shows
	// Synced=False reason ChangeHeld), not sent, and go out oldest first when the hour
	// rolls on, when the cap is raised, or when the annotation
	// scim.stackscim.io/release-held on the ScimSettings is set to a new value.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	MaxDeactivationsPerHour int32 `json:"maxDeactivationsPerHour,omitempty"`
}

// Reasons of the StackUser Synced condition that the plan CLI reads.
const (
	// ReasonObserveOnly: the tenant is in Observe mode; status.plannedChanges lists what
	// Enforce would change on the site.
	ReasonObserveOnly = "ObserveOnly"
	// ReasonChangeHeld: the deactivation brake holds this user's deactivation or demotion.
	ReasonChangeHeld = "ChangeHeld"
)

// LinkSiteIDAnnotation, set on a StackUser by the SCIM server when an IdP links an
// existing site account (a PUT or PATCH of an unmanaged account's id), names that
// account: the reconciler links it by id first, then by externalId or userName.
const LinkSiteIDAnnotation = "scim.stackscim.io/link-site-id"

// ReleaseHeldAnnotation, set on a ScimSettings to a value it did not have before, sends
// every change the brake holds at that moment, past the hourly cap.
const ReleaseHeldAnnotation = "scim.stackscim.io/release-held"

// PlanAction is the kind of a change the operator plans on the site.
// +kubebuilder:validation:Enum=Link;Create;Update;Activate;Deactivate;Promote;Demote;Delete
type PlanAction string

const (
	// PlanLink links the StackUser to an existing site account (found by externalId or
	// userName); nothing is written on the site by the link itself.
	PlanLink PlanAction = "Link"
	// PlanCreate creates the site account.
	PlanCreate PlanAction = "Create"
	// PlanUpdate changes one profile field.
	PlanUpdate PlanAction = "Update"
	// PlanActivate reactivates the site account.
	PlanActivate PlanAction = "Activate"
	// PlanDeactivate deactivates the site account.
	PlanDeactivate PlanAction = "Deactivate"
	// PlanPromote raises the site role.
	PlanPromote PlanAction = "Promote"
	// PlanDemote lowers the site role.
	PlanDemote PlanAction = "Demote"
	// PlanDelete permanently deletes the site account (a deleted StackUser under
	// deletionPolicy Delete).
	PlanDelete PlanAction = "Delete"
)

// PlanActions lists the plan actions in the order plans print them.
var PlanActions = []PlanAction{PlanLink, PlanCreate, PlanUpdate, PlanActivate, PlanDeactivate, PlanPromote, PlanDemote, PlanDelete}

// PlannedChange is one change the operator would make on the site (Observe mode) or
// holds back (the deactivation brake).
type PlannedChange struct {
	// action is the kind of change.
	// +required
	Action PlanAction `json:"action"`
	// field is the attribute changed (active, role, title, ...); empty for Link and Create.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Field string `json:"field,omitempty"`
	// old is the site's current value (for Link, empty).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Old string `json:"old,omitempty"`
	// new is the value the operator would write (for Link, the site account id; for
	// Create, the userName).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	New string `json:"new,omitempty"`
}

// PlanSummary sums a tenant's planned and held changes.
type PlanSummary struct {
	// users is the number of StackUsers with planned or held changes.
	// +optional
	Users int32 `json:"users"`
	// link counts StackUsers that would link to an existing site account.
	// +optional
	Link int32 `json:"link,omitempty"`
	// create counts site accounts that would be created.
	// +optional
	Create int32 `json:"create,omitempty"`
	// update counts profile field changes.
	// +optional
	Update int32 `json:"update,omitempty"`
	// activate counts reactivations.
	// +optional
	Activate int32 `json:"activate,omitempty"`
	// deactivate counts deactivations.
	// +optional
	Deactivate int32 `json:"deactivate,omitempty"`
	// promote counts role raises.
	// +optional
	Promote int32 `json:"promote,omitempty"`
	// demote counts role lowerings.
	// +optional
	Demote int32 `json:"demote,omitempty"`
	// delete counts permanent deletions.
	// +optional
	Delete int32 `json:"delete,omitempty"`
	// held is the number of StackUsers whose deactivation or demotion the brake holds.
	// +optional
	Held int32 `json:"held,omitempty"`
	// heldUsers names the first held StackUsers, oldest hold first.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	HeldUsers []string `json:"heldUsers,omitempty"`
}

// SentCount is how many deactivations and demotions went to the site in one minute.
type SentCount struct {
	// minute is the start of the minute.
	// +required
	Minute metav1.Time `json:"minute"`
	// count of changes sent in that minute.
	// +required
	// +kubebuilder:validation:Minimum=1
	Count int32 `json:"count"`
}

// SafetyStatus is the brake's ledger. It lives in status, not in memory, so a restarted
// manager keeps counting the same hour and releases what it held.
type SafetyStatus struct {
	// sent counts the deactivations and demotions sent in the last hour, per minute.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Sent []SentCount `json:"sent,omitempty"`
	// releasedValue is the value of the release-held annotation last acted on.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ReleasedValue string `json:"releasedValue,omitempty"`
	// releasedAt is when it was acted on: changes held until then were released.
	// +optional
	ReleasedAt *metav1.Time `json:"releasedAt,omitempty"`
}

// SiteAccountSample names one site account that no StackUser describes.
type SiteAccountSample struct {
	// id is the site account id.
	// +required
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id"`
	// userName is its userName on the site.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	UserName string `json:"userName,omitempty"`
	// active says whether it can sign in.
	// +optional
	Active bool `json:"active"`
}

// EffectiveMode is spec.mode with its default applied.
func (s *ScimSettings) EffectiveMode() Mode {
	if s.Spec.Mode == "" {
		return ModeEnforce
	}
	return s.Spec.Mode
}

// MaxDeactivationsPerHour is the brake's cap; 0 means none.
func (s *ScimSettings) MaxDeactivationsPerHour() int {
	if s.Spec.Safety == nil {
		return 0
	}
	return int(s.Spec.Safety.MaxDeactivationsPerHour)
}

// EvaluatedGeneration is the generation the operator last evaluated the user at: the
// Synced condition's observedGeneration. status.observedGeneration stays behind it while
// the site is left out of line on purpose (an Observe plan, a held change).
func (u *StackUser) EvaluatedGeneration() int64 {
	for _, c := range u.Status.Conditions {
		if c.Type == ConditionSynced {
			return c.ObservedGeneration
		}
	}
	return 0
}
