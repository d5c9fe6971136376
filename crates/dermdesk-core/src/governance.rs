//! Clinical governance of outcomes: which outcomes a referral may receive, as data and pure
//! functions. The UI asks [`advise`] to show, per kind of outcome, whether it is allowed and
//! why not; signing runs [`check`] and refuses what the rules forbid, whatever the UI did.
//!
//! The rules (from the service's own policy):
//! - **No recorded consent**: the only outcome is a return to the referrer asking for it
//!   (request for more information).
//! - **Two-week-wait referral** (suspected cancer): a face-to-face appointment on the
//!   two-week-wait pathway, unless the consultant confirms and gives a reason; the reason is
//!   signed with the outcome. Only the referrer may downgrade, so a consultant's downgrade is an
//!   explicit, recorded decision, never a silent one.
//! - **Suspected-malignancy diagnosis**: face to face, always (cancer diagnoses are given in
//!   person). Ruling cancer out by letter is fine: that is a benign diagnosis.

use dermdesk_protocol::{Outcome, OutcomeKind, Urgency};
use serde::Serialize;

/// What the rules need to know of the referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub urgency: Urgency,
    pub consent_given: bool,
}

/// One governance rule, named for the UI and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    NoConsent,
    TwoWeekWait,
    SuspectedMalignancy,
}

/// Whether an outcome kind may be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    Allowed,
    /// Allowed once the consultant confirms and gives a reason.
    NeedsReason,
    Blocked,
}

/// The rules' advice on one kind of outcome, with the reason in the consultant's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindAdvice {
    pub kind: OutcomeKind,
    pub permission: Permission,
    pub rule: Option<Rule>,
    pub why: Option<String>,
}

/// Why an outcome may not be signed as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GovernanceProblem {
    pub rule: Rule,
    pub message: String,
}

pub const ALL_KINDS: [OutcomeKind; 4] = [
    OutcomeKind::GpTreatmentPlan,
    OutcomeKind::FaceToFace,
    OutcomeKind::RequestMoreInformation,
    OutcomeKind::AdviceAndDischarge,
];

const NO_CONSENT: &str = "No consent is recorded for this referral. The only outcome allowed is a \
                          return to the referrer asking for it (request more information).";
const SUSPECTED_MALIGNANCY: &str = "The diagnosis is a suspected malignancy: cancer diagnoses are \
                                    given in person, so the outcome must be a face-to-face appointment.";
const TWO_WEEK_WAIT: &str = "This is a two-week-wait (suspected cancer) referral: only the referrer \
                             may downgrade it. Answering it other than with a two-week-wait \
                             appointment needs your confirmation and a reason, which is signed with \
                             the outcome.";

/// Advice on every kind of outcome for this referral and (if chosen) diagnosis.
pub fn advise(context: Context, suspected_malignancy: bool) -> Vec<KindAdvice> {
    ALL_KINDS.iter().map(|&kind| advise_kind(context, suspected_malignancy, kind)).collect()
}

fn advise_kind(context: Context, suspected_malignancy: bool, kind: OutcomeKind) -> KindAdvice {
    let verdict = |permission, rule: Rule, why: &str| KindAdvice {
        kind,
        permission,
        rule: Some(rule),
        why: Some(why.to_owned()),
    };
    if !context.consent_given && kind != OutcomeKind::RequestMoreInformation {
        return verdict(Permission::Blocked, Rule::NoConsent, NO_CONSENT);
    }
    if !context.consent_given {
        return KindAdvice { kind, permission: Permission::Allowed, rule: None, why: None };
    }
    if suspected_malignancy && kind != OutcomeKind::FaceToFace {
        return verdict(Permission::Blocked, Rule::SuspectedMalignancy, SUSPECTED_MALIGNANCY);
    }
    if context.urgency == Urgency::TwoWeekWait && kind != OutcomeKind::FaceToFace {
        return verdict(Permission::NeedsReason, Rule::TwoWeekWait, TWO_WEEK_WAIT);
    }
    KindAdvice { kind, permission: Permission::Allowed, rule: None, why: None }
}

/// Checks an outcome against the rules before it is signed. `suspected_malignancy` is the
/// picklist's flag for the chosen diagnosis (false for free text).
pub fn check(
    context: Context,
    outcome: &Outcome,
    suspected_malignancy: bool,
) -> Result<(), GovernanceProblem> {
    let advice = advise_kind(context, suspected_malignancy, outcome.kind);
    let has_reason = outcome.governance_reason.as_deref().is_some_and(|r| !r.trim().is_empty());
    let problem = |rule, message: &str| Err(GovernanceProblem { rule, message: message.to_owned() });
    match (advice.permission, advice.rule) {
        (Permission::Blocked, Some(rule)) => return problem(rule, advice.why.as_deref().unwrap_or_default()),
        (Permission::NeedsReason, Some(rule)) if !has_reason => {
            return problem(rule, advice.why.as_deref().unwrap_or_default())
        }
        _ => {}
    }
    // A face-to-face answer to a two-week-wait referral at a lower urgency is a downgrade too.
    let downgraded = context.urgency == Urgency::TwoWeekWait
        && outcome.kind == OutcomeKind::FaceToFace
        && outcome.appointment_urgency.is_some_and(|u| u != Urgency::TwoWeekWait);
    if downgraded && !has_reason && context.consent_given {
        return problem(Rule::TwoWeekWait, TWO_WEEK_WAIT);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutcomeKind::*;
    use Permission::*;

    fn context(urgency: Urgency, consent_given: bool) -> Context {
        Context { urgency, consent_given }
    }

    fn outcome(kind: OutcomeKind, urgency: Option<Urgency>, reason: Option<&str>) -> Outcome {
        Outcome {
            kind,
            appointment_urgency: urgency,
            plan: "plan".into(),
            governance_reason: reason.map(str::to_owned),
            ..Outcome::default_extras()
        }
    }

    #[test]
    fn advice_per_kind_follows_the_rules() {
        let r = Urgency::Routine;
        let w = Urgency::TwoWeekWait;
        // (referral urgency, consent, suspected malignancy, [plan, face to face, request, discharge])
        let table = [
            (r, true, false, [Allowed, Allowed, Allowed, Allowed]),
            (w, true, false, [NeedsReason, Allowed, NeedsReason, NeedsReason]),
            (r, true, true, [Blocked, Allowed, Blocked, Blocked]),
            (w, true, true, [Blocked, Allowed, Blocked, Blocked]),
            (r, false, false, [Blocked, Blocked, Allowed, Blocked]),
            (w, false, true, [Blocked, Blocked, Allowed, Blocked]),
        ];
        for (urgency, consent, malignant, expected) in table {
            let got: Vec<Permission> =
                advise(context(urgency, consent), malignant).iter().map(|a| a.permission).collect();
            assert_eq!(got, expected, "{urgency:?} consent={consent} malignant={malignant}");
        }
    }

    #[test]
    fn signing_checks_follow_the_rules() {
        let w = Urgency::TwoWeekWait;
        let r = Urgency::Routine;
        let reason = Some("Clinically a seborrhoeic keratosis on good photographs; GP agrees.");
        // (referral urgency, consent, suspected malignancy, outcome, refused by)
        let table: Vec<(Urgency, bool, bool, Outcome, Option<Rule>)> = vec![
            (r, true, false, outcome(GpTreatmentPlan, None, None), None),
            (w, true, false, outcome(FaceToFace, Some(w), None), None),
            (w, true, false, outcome(GpTreatmentPlan, None, None), Some(Rule::TwoWeekWait)),
            (w, true, false, outcome(GpTreatmentPlan, None, Some("   ")), Some(Rule::TwoWeekWait)),
            (w, true, false, outcome(GpTreatmentPlan, None, reason), None),
            (w, true, false, outcome(AdviceAndDischarge, None, reason), None),
            (w, true, false, outcome(FaceToFace, Some(r), None), Some(Rule::TwoWeekWait)),
            (w, true, false, outcome(FaceToFace, Some(r), reason), None),
            (r, true, true, outcome(GpTreatmentPlan, None, reason), Some(Rule::SuspectedMalignancy)),
            (r, true, true, outcome(FaceToFace, Some(Urgency::Urgent), None), None),
            (w, true, true, outcome(AdviceAndDischarge, None, reason), Some(Rule::SuspectedMalignancy)),
            (r, false, false, outcome(GpTreatmentPlan, None, reason), Some(Rule::NoConsent)),
            (r, false, false, outcome(FaceToFace, Some(r), None), Some(Rule::NoConsent)),
            (w, false, true, outcome(RequestMoreInformation, None, None), None),
        ];
        for (urgency, consent, malignant, outcome, refused_by) in table {
            let result = check(context(urgency, consent), &outcome, malignant);
            assert_eq!(
                result.as_ref().err().map(|p| p.rule),
                refused_by,
                "{urgency:?} consent={consent} malignant={malignant} {:?} reason={:?}: {result:?}",
                outcome.kind,
                outcome.governance_reason
            );
        }
    }

    #[test]
    fn every_refusal_says_why_in_words() {
        let problem = check(context(Urgency::Routine, false), &outcome(GpTreatmentPlan, None, None), false)
            .unwrap_err();
        assert!(problem.message.contains("No consent"), "{problem}");
        let advice = advise(context(Urgency::TwoWeekWait, true), false);
        assert!(advice[0].why.as_deref().unwrap().contains("two-week-wait"));
        assert!(advice[1].why.is_none());
    }
}
