"""Value sets of the registration contract. Front-end clients and partners code against these
exact strings; add members, never rename them."""

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    supervisor = "supervisor"
    clerk = "clerk"
    monitor = "monitor"
    partner = "partner"
    relay = "relay"  # an office's relay posting activity events to central (service account, one office)


# Accounts that belong to one office: its staff, and its relay posting to central.
OFFICE_ROLES = frozenset({Role.supervisor, Role.clerk, Role.relay})
SERVICE_ROLES = frozenset({Role.partner, Role.relay})


class LocationLevel(StrEnum):
    province = "province"
    district = "district"
    commune = "commune"
    village = "village"


class Sex(StrEnum):
    female = "female"
    male = "male"
    other = "other"


class Relationship(StrEnum):
    head = "head"
    spouse = "spouse"
    child = "child"
    parent = "parent"
    sibling = "sibling"
    grandchild = "grandchild"
    other_relative = "other_relative"
    non_relative = "non_relative"


class DisabilityLevel(StrEnum):
    none = "none"
    some = "some"
    a_lot = "a_lot"
    cannot = "cannot"


class EmploymentStatus(StrEnum):
    formal = "formal"
    informal = "informal"
    self_employed = "self_employed"
    unemployed = "unemployed"
    inactive = "inactive"
    student = "student"
    retired = "retired"


class AreaType(StrEnum):
    urban = "urban"
    rural = "rural"


class ConsentPurpose(StrEnum):
    registry = "registry"  # keep the household's record here (required to register)
    eligibility_sharing = "eligibility_sharing"  # send the facts a partner scheme needs to decide
    referral_sharing = "referral_sharing"  # pass contact details to an agency the client is referred to
    contact = "contact"  # reach the household by phone or SMS
    registry_sharing = "registry_sharing"  # partner programmes may find the household in the registry (DCI)


class ConsentMethod(StrEnum):
    verbal = "verbal"
    signature = "signature"
    thumbprint = "thumbprint"
    written = "written"
    guardian = "guardian"


DISABILITY_DOMAINS = ("seeing", "hearing", "walking", "remembering", "self_care", "communicating")
# Washington Group short-set cut-off: "a lot of difficulty" or "cannot do" in any domain.
SEVERE_DISABILITY_LEVELS = frozenset({DisabilityLevel.a_lot, DisabilityLevel.cannot})

AGE_BANDS = ("0-4", "5-17", "18-59", "60+")


def age_band(age_years: int) -> str:
    if age_years < 5:
        return "0-4"
    if age_years < 18:
        return "5-17"
    if age_years < 60:
        return "18-59"
    return "60+"


# ---- value sets of eligibility, cases, referrals and grievances (shared with central) --------------


class SchemeKind(StrEnum):
    social_protection = "social_protection"
    employment = "employment"


class Outcome(StrEnum):
    """A scheme's verdict for one subject. `error` means "could not be determined" and is never shown
    or counted as not eligible."""

    eligible = "eligible"
    not_eligible = "not_eligible"
    needs_information = "needs_information"
    error = "error"


class EventTrigger(StrEnum):
    """What caused an activity event: central counts service to clients only from the window."""

    window = "window"  # a clerk or supervisor serving a client at the office (and anything an office user does)
    rescreen = "rescreen"  # a batch re-screen (`guichet rescreen`) after a rules change: no client came
    partner = "partner"  # a partner scheme or agency through the partner API (a decision, a referral's outcome)
    system = "system"  # the office's own housekeeping (a referral expiring past its due date)


class CaseStatus(StrEnum):
    open = "open"
    waiting = "waiting"
    closed = "closed"


class ApplicationStatus(StrEnum):
    submitted = "submitted"
    pending_information = "pending_information"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"


class ReferralStatus(StrEnum):
    issued = "issued"
    accepted = "accepted"
    completed = "completed"
    declined = "declined"
    expired = "expired"


class GrievanceCategory(StrEnum):
    exclusion_error = "exclusion_error"
    payment = "payment"
    staff_conduct = "staff_conduct"
    data_correction = "data_correction"
    appeal = "appeal"
    other = "other"


class GrievanceChannel(StrEnum):
    in_person = "in_person"
    phone = "phone"
    letter = "letter"
    hotline = "hotline"


class GrievanceStatus(StrEnum):
    received = "received"
    in_review = "in_review"
    resolved = "resolved"
    escalated = "escalated"
    rejected = "rejected"


class BenefitFrequency(StrEnum):
    once = "once"
    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"
    per_event = "per_event"


# ---- case management (docs/case-management.md) -------------------------------------------------------


class CaseOutcome(StrEnum):
    """Why a case was closed (case.closed's outcome)."""

    enrolled = "enrolled"  # at least one application approved
    referred = "referred"  # served by another agency
    information_given = "information_given"
    not_eligible = "not_eligible"
    withdrawn = "withdrawn"  # the client did not go on
    no_contact = "no_contact"
    moved_away = "moved_away"
    deceased = "deceased"
    other = "other"


class ApplicationRoute(StrEnum):
    """Who decides an application: a supervisor at the office, or the scheme's agency (partner) over HTTP."""

    office = "office"
    partner = "partner"


class SubmissionState(StrEnum):
    """Sending an application to a partner scheme."""

    pending = "pending"  # not sent yet (being sent, or to be retried)
    sent = "sent"  # the partner acknowledged it
    failed = "failed"  # the last attempt failed; flagged for the clerk to retry


class FollowUpStatus(StrEnum):
    open = "open"
    completed = "completed"
    cancelled = "cancelled"


class WaitingWith(StrEnum):
    """Who must act next on an open grievance."""

    office = "office"  # the office's staff (an appeal: a supervisor of the office who did not take the decision)
    admin = "admin"  # an appeal whose office has no such supervisor: an admin decides it


class ComplainantKind(StrEnum):
    person = "person"  # a registered person (by id)
    named = "named"  # someone not registered: a name and a contact
    anonymous = "anonymous"
