//! Planning a demo set: which referrals, from whom, when, and which photos each carries. Pure:
//! no rendering and no files; `cache` turns the plan into JPEG files and `PhotoMeta`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use dermdesk_protocol::{
    ClinicalDetails, Consent, Nation, Patient, PhotoSource, PhotoView, Referral, Referrer, Sex, Urgency,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cases::{self, Case, Site};
use crate::people::{patient_name, practices, synthetic_nhs_number, Practice};
use crate::photo::{BodyRegion, Finding, PhotoDefect, PhotoSpec};
use crate::{DemoOptions, PhotoScale};

/// A referral ready but for its photos' metadata, which needs the rendered bytes.
#[derive(Debug, Clone)]
pub(crate) struct PlannedReferral {
    /// `photos` is empty until the photos exist.
    pub referral: Referral,
    pub photos: Vec<PlannedPhoto>,
}

#[derive(Debug, Clone)]
pub(crate) struct PlannedPhoto {
    pub spec: PhotoSpec,
    pub captured_at: DateTime<Utc>,
    pub body_site: String,
}

/// When a slot's referral arrived.
#[derive(Debug, Clone, Copy)]
enum Arrival {
    /// This many working days before now (inclusive range).
    WorkingDaysAgo(u32, u32),
    /// About this many months before the referral of slot `of`.
    MonthsBefore { months: u32, of: usize },
}

/// One referral of the demo, in plan order. The first twelve cover every kind of case, every
/// urgency and a patient referred twice; later slots repeat common cases with new patients.
#[derive(Clone, Copy)]
struct Slot {
    case: &'static Case,
    arrival: Arrival,
    /// The same patient, site and lesion as this slot (an earlier referral of theirs).
    same_patient_as: Option<usize>,
    stage: u8,
    consent_given: bool,
    /// Photos (by index) taken badly on purpose, so the desk's photo-quality flags show.
    defects: &'static [(usize, PhotoDefect)],
}

const fn slot(case: &'static Case, from: u32, to: u32) -> Slot {
    Slot {
        case,
        arrival: Arrival::WorkingDaysAgo(from, to),
        same_patient_as: None,
        stage: 1,
        consent_given: true,
        defects: &[],
    }
}

const SLOTS: &[Slot] = &[
    slot(&cases::CHANGING_NAEVUS, 0, 2),
    Slot {
        case: &cases::NAEVUS_EARLIER,
        arrival: Arrival::MonthsBefore { months: 5, of: 0 },
        same_patient_as: Some(0),
        stage: 0,
        consent_given: true,
        defects: &[],
    },
    slot(&cases::BASAL_CELL_CARCINOMA_URGENT, 1, 3),
    // A close-up out of focus: the desk flags it and offers to ask for better photos.
    Slot { defects: &[(0, PhotoDefect::OutOfFocus)], ..slot(&cases::SEBORRHOEIC_KERATOSIS, 0, 4) },
    slot(&cases::PSORIASIS_FLARE, 0, 3),
    // Photos attached but consent not recorded: the desk must not show them.
    Slot { consent_given: false, ..slot(&cases::ECZEMA, 2, 4) },
    // Received three working days ago: past the two-week-wait triage target.
    slot(&cases::SQUAMOUS_CELL_CARCINOMA, 3, 3),
    // The patient's second photo taken in a dark room.
    Slot { defects: &[(1, PhotoDefect::Underexposed)], ..slot(&cases::ACNE, 0, 4) },
    // Received over a week ago: overdue even as a routine referral.
    slot(&cases::ACTINIC_KERATOSIS, 7, 9),
    slot(&cases::NEW_MELANOMA, 0, 1),
    slot(&cases::ROSACEA, 1, 4),
    // A close-up washed out by the flash.
    Slot { defects: &[(1, PhotoDefect::Overexposed)], ..slot(&cases::TINEA, 0, 4) },
    Slot {
        case: &cases::PSORIASIS_EARLIER,
        arrival: Arrival::MonthsBefore { months: 4, of: 4 },
        same_patient_as: Some(4),
        stage: 0,
        consent_given: true,
        defects: &[],
    },
    slot(&cases::BASAL_CELL_CARCINOMA, 2, 5),
    slot(&cases::MOLE_CHECK, 0, 4),
];

/// Cases for slots beyond the fixed list, in turn.
const REPEATING: &[&Case] = &[
    &cases::BASAL_CELL_CARCINOMA,
    &cases::SEBORRHOEIC_KERATOSIS,
    &cases::MOLE_CHECK,
    &cases::ACNE,
    &cases::TINEA,
    &cases::ECZEMA,
    &cases::ACTINIC_KERATOSIS,
    &cases::ROSACEA,
    &cases::NEW_MELANOMA,
];

fn slot_at(index: usize) -> Slot {
    match SLOTS.get(index) {
        Some(fixed) => *fixed,
        None => slot(REPEATING[(index - SLOTS.len()) % REPEATING.len()], 0, 4),
    }
}

/// The patient-level facts of one slot, shared with an earlier referral of the same patient.
#[derive(Debug, Clone)]
struct Subject {
    patient: Patient,
    site: Site,
    skin_type: u8,
    body_hair: u8,
    subject_seed: u64,
    practice: usize,
    referrer: usize,
    /// Index of the history and question variants, so the two referrals read consistently.
    variant: usize,
}

/// A random stream for one purpose: slot `index` always gets the same stream for a seed,
/// however many slots the demo has.
fn stream(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

pub(crate) fn plan(options: &DemoOptions) -> Vec<PlannedReferral> {
    let mut rng = stream(options.seed, 0);
    let practices = practices(&mut rng);
    let first_number: u32 = rng.gen_range(100..700);
    let now = options.now;

    let slots: Vec<Slot> = (0..options.referrals).map(slot_at).collect();
    let mut subjects: Vec<Subject> = Vec::with_capacity(slots.len());
    let mut received: Vec<DateTime<Utc>> = Vec::with_capacity(slots.len());
    // Later referrals first where an earlier one depends on them: every `same_patient_as` and
    // `MonthsBefore` points to a lower slot number, so one pass in order works.
    for (index, slot) in slots.iter().enumerate() {
        let mut rng = stream(options.seed, 1 + index as u64);
        let subject = match slot.same_patient_as.and_then(|other| subjects.get(other)) {
            Some(earlier) => earlier.clone(),
            None => new_subject(&mut rng, slot.case, &practices, now),
        };
        let nation = practices[subject.practice].practice.nation;
        let arrival = match slot.arrival {
            Arrival::WorkingDaysAgo(from, to) => {
                let days = rng.gen_range(from..=to);
                received_at(&mut rng, now, days, nation)
            }
            Arrival::MonthsBefore { months, of } => {
                let later = received.get(of).copied().unwrap_or(now);
                let date = working_day_on_or_before(
                    (later - Duration::days(i64::from(months) * 30 + rng.gen_range(-6..6))).date_naive(),
                    nation,
                );
                at_working_time(&mut rng, date)
            }
        };
        subjects.push(subject);
        received.push(arrival);
    }

    // Referral numbers follow arrival order, as a real service's would.
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_by_key(|&index| (received[index], index));
    let mut numbers = vec![0; slots.len()];
    for (position, &index) in order.iter().enumerate() {
        numbers[index] = first_number + position as u32;
    }

    slots
        .iter()
        .enumerate()
        .map(|(index, slot)| {
            let mut rng = stream(options.seed, 10_000 + index as u64);
            let subject = &subjects[index];
            let practice = &practices[subject.practice];
            let referrer = practice.referrers[subject.referrer].clone();
            let received_at = received[index];
            let photos = plan_photos(&mut rng, slot, subject, received_at, options.photo_scale);
            let earliest_photo = photos.iter().map(|photo| photo.captured_at).min().unwrap_or(received_at);
            let consent = if slot.consent_given {
                let recorded_at = earliest_photo - Duration::minutes(rng.gen_range(3..40));
                Consent {
                    given: true,
                    recorded_at: Some(recorded_at),
                    recorded_by: Some(recorded_by(&referrer)),
                }
            } else {
                Consent { given: false, recorded_at: None, recorded_by: None }
            };
            let referral = Referral {
                id: format!("DD-{}-{:06}", received_at.year(), numbers[index]),
                version: 1,
                patient: subject.patient.clone(),
                practice: practice.practice.clone(),
                referrer,
                received_at,
                urgency: slot.case.urgency,
                clinical: clinical_details(&mut rng, slot.case, subject, now),
                consent,
                photos: Vec::new(),
            };
            PlannedReferral { referral, photos }
        })
        .collect()
}

fn new_subject(rng: &mut ChaCha8Rng, case: &Case, practices: &[Practice], now: DateTime<Utc>) -> Subject {
    let sex = if rng.gen_bool(0.55) { Sex::Female } else { Sex::Male };
    let age = rng.gen_range(case.ages.0..=case.ages.1);
    let birthday =
        now.date_naive() - Duration::days(i64::from(age) * 365 + i64::from(age / 4) + rng.gen_range(0..365));
    let patient = Patient {
        name: patient_name(rng, sex),
        nhs_number: synthetic_nhs_number(rng),
        date_of_birth: birthday,
        sex,
    };
    let site = *case.sites.choose(rng).unwrap_or(&case.sites[0]);
    let skin_type = *case.skin_types.choose(rng).unwrap_or(&2);
    let body_hair = match (sex, site.region) {
        (_, BodyRegion::Face) => 0,
        (Sex::Male, BodyRegion::Forearm | BodyRegion::Leg | BodyRegion::UpperArm | BodyRegion::Hand) => {
            rng.gen_range(2..=3)
        }
        (Sex::Male, _) => rng.gen_range(0..=2),
        (_, BodyRegion::Forearm | BodyRegion::Leg) => rng.gen_range(0..=1),
        _ => 0,
    };
    // Mostly English practices; every nation appears now and then.
    let practice = if rng.gen_bool(0.7) { rng.gen_range(0..4) } else { rng.gen_range(0..practices.len()) };
    let referrer = usize::from(rng.gen_bool(0.3));
    Subject {
        patient,
        site,
        skin_type,
        body_hair,
        subject_seed: rng.gen(),
        practice,
        referrer,
        variant: rng.gen_range(0..16),
    }
}

/// The bank holiday calendar the desk counts due dates in (dermdesk-core's data file, read at
/// build time), so "N working days ago" means here what it means there and the demo keeps
/// referrals due today in bank holiday weeks too. The file, not the core crate: the hub uses
/// this crate and must never depend on core.
const BANK_HOLIDAYS: &str = include_str!("../../dermdesk-core/data/bank-holidays.json");

/// The bank holidays of `nation`'s calendar (England and Wales share one). Dates beyond the
/// file are treated as ordinary days, as the desk does.
fn bank_holidays(nation: Nation) -> &'static BTreeSet<NaiveDate> {
    static CALENDARS: OnceLock<BTreeMap<&'static str, BTreeSet<NaiveDate>>> = OnceLock::new();
    static NONE: BTreeSet<NaiveDate> = BTreeSet::new();
    let calendars = CALENDARS.get_or_init(|| {
        let file: serde_json::Value = serde_json::from_str(BANK_HOLIDAYS).unwrap_or_default();
        ["england-and-wales", "scotland", "northern-ireland"]
            .into_iter()
            .map(|division| {
                let dates = file[division]["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|event| event["date"].as_str()?.parse().ok())
                    .collect();
                (division, dates)
            })
            .collect()
    });
    let division = match nation {
        Nation::England | Nation::Wales => "england-and-wales",
        Nation::Scotland => "scotland",
        Nation::NorthernIreland => "northern-ireland",
    };
    calendars.get(division).unwrap_or(&NONE)
}

/// Monday to Friday and not a bank holiday in the practice's nation.
fn is_working_day(date: NaiveDate, nation: Nation) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !bank_holidays(nation).contains(&date)
}

fn working_day_on_or_before(mut date: NaiveDate, nation: Nation) -> NaiveDate {
    while !is_working_day(date, nation) {
        date = date.pred_opt().unwrap_or(date);
    }
    date
}

/// The working day `days` working days before `now` (0: today, or the last working day).
fn working_days_before(now: DateTime<Utc>, days: u32, nation: Nation) -> NaiveDate {
    let mut date = working_day_on_or_before(now.date_naive(), nation);
    for _ in 0..days {
        date = working_day_on_or_before(date.pred_opt().unwrap_or(date), nation);
    }
    date
}

/// A time in practice hours (08:00 to 17:30 UTC) on `date`.
fn at_working_time(rng: &mut ChaCha8Rng, date: NaiveDate) -> DateTime<Utc> {
    let minutes = rng.gen_range(8 * 60..17 * 60 + 30);
    let time = NaiveTime::from_hms_opt(minutes / 60, minutes % 60, rng.gen_range(0..60)).unwrap_or_default();
    date.and_time(time).and_utc()
}

/// Arrival `days` working days (of the practice's nation) before `now`, never in the future.
fn received_at(rng: &mut ChaCha8Rng, now: DateTime<Utc>, days: u32, nation: Nation) -> DateTime<Utc> {
    let arrival = at_working_time(rng, working_days_before(now, days, nation));
    if arrival < now - Duration::minutes(10) {
        return arrival;
    }
    // Today, but later than now: move it to earlier today if the working day has begun, else
    // to the previous working day.
    let earlier = now - Duration::minutes(rng.gen_range(15..150));
    if earlier.date_naive() == now.date_naive()
        && earlier.time() >= NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default()
    {
        earlier
    } else {
        at_working_time(rng, working_days_before(now, days + 1, nation))
    }
}

fn recorded_by(referrer: &Referrer) -> String {
    format!("{} ({})", referrer.name, referrer.role)
}

fn fill(template: &str, subject: &Subject, duration: &str, now: DateTime<Utc>) -> String {
    let female = subject.patient.sex == Sex::Female;
    let age = age_in_years(subject.patient.date_of_birth, now.date_naive());
    template
        .replace("{age}", &age.to_string())
        .replace("{site}", subject.site.text)
        .replace("{duration}", duration)
        .replace("{Pronoun}", if female { "She" } else { "He" })
        .replace("{pronoun}", if female { "she" } else { "he" })
        .replace("{possessive}", if female { "her" } else { "his" })
        .replace("{object}", if female { "her" } else { "him" })
}

fn age_in_years(born: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - born.year();
    if (on.month(), on.day()) < (born.month(), born.day()) {
        age -= 1;
    }
    age
}

fn pick<'a>(choices: &[&'a str], variant: usize) -> &'a str {
    choices.get(variant % choices.len().max(1)).copied().unwrap_or("")
}

fn clinical_details(
    rng: &mut ChaCha8Rng,
    case: &Case,
    subject: &Subject,
    now: DateTime<Utc>,
) -> ClinicalDetails {
    let duration = pick(case.durations, subject.variant);
    ClinicalDetails {
        question: fill(pick(case.questions, subject.variant), subject, duration, now),
        history: fill(pick(case.histories, subject.variant), subject, duration, now),
        duration: duration.to_owned(),
        medications: pick(case.medications, subject.variant + rng.gen_range(0..2)).to_owned(),
    }
}

/// Phone camera sizes: 12 MP, or 24 MP when asked; patients' phones are often older.
fn photo_size(rng: &mut ChaCha8Rng, source: PhotoSource, high_resolution: bool) -> (u32, u32) {
    match source {
        PhotoSource::GpPractice if high_resolution => (5712, 4284),
        PhotoSource::GpPractice => {
            *[(4032, 3024), (4032, 3024), (4000, 3000)].choose(rng).unwrap_or(&(4032, 3024))
        }
        PhotoSource::PatientLink => {
            *[(3264, 2448), (3264, 2448), (4000, 3000), (4032, 3024)].choose(rng).unwrap_or(&(3264, 2448))
        }
    }
}

fn scaled(size: (u32, u32), scale: PhotoScale) -> (u32, u32) {
    match scale {
        PhotoScale::Full => size,
        PhotoScale::Small(longest) => {
            let longest = longest.max(16);
            let current = size.0.max(size.1);
            if current <= longest {
                return size;
            }
            let shrink = |side: u32| {
                ((u64::from(side) * u64::from(longest) + u64::from(current) / 2) / u64::from(current)).max(1)
                    as u32
            };
            (shrink(size.0), shrink(size.1))
        }
    }
}

fn plan_photos(
    rng: &mut ChaCha8Rng,
    slot: &Slot,
    subject: &Subject,
    received_at: DateTime<Utc>,
    scale: PhotoScale,
) -> Vec<PlannedPhoto> {
    let first_gap = match slot.case.photos.first().map(|photo| photo.1) {
        Some(PhotoSource::PatientLink) => Duration::minutes(rng.gen_range(180..2400)),
        _ => Duration::minutes(rng.gen_range(15..180)),
    };
    let mut captured_at = received_at - first_gap;
    let mut close_up_seen = false;
    slot.case
        .photos
        .iter()
        .enumerate()
        .map(|(index, &(view, source))| {
            // The GP takes a suspected cancer's first close-up with the best camera in the room
            // (24 MP); everything else is 12 MP or less, which keeps the first build quick.
            let high_resolution =
                view == PhotoView::CloseUp && !close_up_seen && slot.case.urgency == Urgency::TwoWeekWait;
            close_up_seen |= view == PhotoView::CloseUp;
            let size = scaled(photo_size(rng, source, high_resolution), scale);
            // Some photos are taken holding the phone upright: stored on their side with
            // orientation 6. The squamous cell carcinoma's overview always is, so every demo
            // has one.
            let portrait = view != PhotoView::Dermoscopic
                && ((slot.case.finding == Finding::SquamousCellCarcinoma && index == 0)
                    || rng.gen_bool(if source == PhotoSource::PatientLink { 0.4 } else { 0.2 }));
            let spec = PhotoSpec {
                seed: rng.gen(),
                subject_seed: subject.subject_seed,
                width: size.0,
                height: size.1,
                view,
                source,
                exif_orientation: if portrait { 6 } else { 1 },
                skin_type: subject.skin_type,
                finding: slot.case.finding,
                region: subject.site.region,
                body_hair: subject.body_hair,
                stage: slot.stage,
                quality: if source == PhotoSource::PatientLink { 70 } else { 90 },
                // Decided by the slot, not drawn: every other photo keeps its bytes.
                defect: slot
                    .defects
                    .iter()
                    .find(|(photo, _)| *photo == index)
                    .map_or(PhotoDefect::None, |(_, defect)| *defect),
            };
            let photo = PlannedPhoto { spec, captured_at, body_site: subject.site.text.to_owned() };
            captured_at += Duration::seconds(rng.gen_range(12..150));
            photo
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn options(referrals: usize) -> DemoOptions {
        DemoOptions {
            seed: 42,
            referrals,
            photo_scale: PhotoScale::Small(640),
            now: Utc.with_ymd_and_hms(2026, 3, 11, 10, 30, 0).unwrap(),
        }
    }

    #[test]
    fn working_days_skip_weekends_and_the_nations_bank_holidays() {
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        // Wednesday 11 March 2026.
        let now = options(1).now;
        assert_eq!(working_days_before(now, 0, Nation::England), date(2026, 3, 11));
        assert_eq!(working_days_before(now, 3, Nation::England), date(2026, 3, 6));
        let saturday = Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0).unwrap();
        assert_eq!(working_days_before(saturday, 0, Nation::England), date(2026, 3, 13));
        // Thursday 9 April 2026: Good Friday and Easter Monday (not in Scotland) before it.
        let after_easter = Utc.with_ymd_and_hms(2026, 4, 9, 10, 0, 0).unwrap();
        assert_eq!(working_days_before(after_easter, 3, Nation::Wales), date(2026, 4, 2));
        assert_eq!(working_days_before(after_easter, 3, Nation::Scotland), date(2026, 4, 6));
        assert!(bank_holidays(Nation::NorthernIreland).contains(&date(2026, 3, 17)));
    }

    #[test]
    fn default_demo_covers_every_urgency_and_consent_state() {
        let planned = plan(&options(12));
        let urgencies: Vec<Urgency> = planned.iter().map(|planned| planned.referral.urgency).collect();
        for urgency in [Urgency::Routine, Urgency::Urgent, Urgency::TwoWeekWait] {
            assert!(urgencies.contains(&urgency), "{urgency:?} missing");
        }
        let refused: Vec<&Referral> = planned
            .iter()
            .map(|planned| &planned.referral)
            .filter(|referral| !referral.consent.given)
            .collect();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].consent.recorded_at, None);
        assert_eq!(refused[0].consent.recorded_by, None);
        let photos: usize = planned.iter().map(|planned| planned.photos.len()).sum();
        assert!((20..=30).contains(&photos), "{photos} photos");
        assert!(planned.iter().all(|planned| (1..=4).contains(&planned.photos.len())));
        assert!(planned
            .iter()
            .flat_map(|planned| &planned.photos)
            .any(|photo| photo.spec.exif_orientation == 6));
        // One photo out of focus, one too dark, one too bright, each in its own referral.
        let mut defects: Vec<PhotoDefect> = planned
            .iter()
            .flat_map(|planned| &planned.photos)
            .map(|photo| photo.spec.defect)
            .filter(|defect| !defect.is_none())
            .collect();
        defects.sort_by_key(|defect| format!("{defect:?}"));
        assert_eq!(defects, [PhotoDefect::OutOfFocus, PhotoDefect::Overexposed, PhotoDefect::Underexposed]);
    }

    #[test]
    fn arrivals_are_in_the_past_and_photos_precede_them() {
        let options = options(20);
        for planned in plan(&options) {
            let referral = &planned.referral;
            assert!(referral.received_at < options.now, "{}", referral.id);
            assert!(
                is_working_day(referral.received_at.date_naive(), referral.practice.nation),
                "{}",
                referral.id
            );
            for photo in &planned.photos {
                assert!(photo.captured_at < referral.received_at, "{}", referral.id);
            }
            if let Some(recorded_at) = referral.consent.recorded_at {
                assert!(
                    planned.photos.iter().all(|photo| recorded_at < photo.captured_at),
                    "{}",
                    referral.id
                );
            }
        }
    }

    #[test]
    fn small_scale_keeps_the_aspect_ratio() {
        assert_eq!(scaled((4032, 3024), PhotoScale::Small(640)), (640, 480));
        assert_eq!(scaled((5712, 4284), PhotoScale::Small(640)), (640, 480));
        assert_eq!(scaled((300, 200), PhotoScale::Small(640)), (300, 200));
        assert_eq!(scaled((4032, 3024), PhotoScale::Full), (4032, 3024));
    }

    #[test]
    fn ids_follow_arrival_order() {
        let mut referrals: Vec<Referral> =
            plan(&options(15)).into_iter().map(|planned| planned.referral).collect();
        referrals.sort_by_key(|referral| referral.received_at);
        let numbers: Vec<u32> = referrals.iter().map(|referral| referral.id[8..].parse().unwrap()).collect();
        assert!(numbers.windows(2).all(|pair| pair[0] < pair[1]), "{numbers:?}");
        assert!(referrals.iter().all(|referral| referral.id.starts_with("DD-20") && referral.id.len() == 14));
    }
}
