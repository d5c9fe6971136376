//! The clinical cases the demo draws on: for each, the diagnosis the photos show, the urgency,
//! where on the body, and referral text written the way GP referrals are written.
//!
//! Text templates use `{age}`, `{site}`, `{duration}`, `{Pronoun}`, `{pronoun}`, `{possessive}`
//! and `{object}`, filled in per patient.

use dermdesk_protocol::{PhotoSource, PhotoView, Urgency};

use crate::photo::{BodyRegion, Finding};

/// A body site as the GP describes it, and the region the photo renderer draws.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site {
    pub text: &'static str,
    pub region: BodyRegion,
}

const fn site(text: &'static str, region: BodyRegion) -> Site {
    Site { text, region }
}

#[derive(Debug)]
pub(crate) struct Case {
    pub finding: Finding,
    pub urgency: Urgency,
    /// Youngest and oldest plausible age, in years.
    pub ages: (u32, u32),
    /// Fitzpatrick skin types to choose from.
    pub skin_types: &'static [u8],
    pub sites: &'static [Site],
    pub questions: &'static [&'static str],
    pub histories: &'static [&'static str],
    pub durations: &'static [&'static str],
    pub medications: &'static [&'static str],
    pub photos: &'static [(PhotoView, PhotoSource)],
}

use BodyRegion::{Back, Chest, Face, Forearm, Hand, Leg, Scalp, UpperArm};
use PhotoSource::{GpPractice, PatientLink};
use PhotoView::{CloseUp, Dermoscopic, Overview};

pub(crate) const PIGMENTED_SITES: &[Site] = &[
    site("upper back, left of the midline", Back),
    site("right scapular region", Back),
    site("left calf", Leg),
    site("right upper arm, lateral aspect", UpperArm),
    site("right side of the anterior chest", Chest),
];

/// The lesion has changed since the patient's earlier referral (same subject, later stage).
pub(crate) const CHANGING_NAEVUS: Case = Case {
    finding: Finding::Melanoma,
    urgency: Urgency::TwoWeekWait,
    ages: (32, 72),
    skin_types: &[1, 2, 2, 3],
    sites: PIGMENTED_SITES,
    questions: &[
        "Suspected melanoma: changing pigmented lesion. Please assess under the two-week-wait pathway.",
        "?Melanoma. Naevus previously reviewed by your service has changed. Urgent assessment please.",
    ],
    histories: &[
        "{age}-year-old seen with a mole on the {site} that {possessive} partner says has grown and darkened. \
         Reviewed via teledermatology earlier this year as a benign-looking naevus with advice to monitor. \
         {Pronoun} now reports it has become larger and irregular, with a darker area and occasional itch. \
         No bleeding. On examination about 9 mm, asymmetrical, irregular border, at least three colours \
         (light brown, dark brown, blue-grey). 7-point checklist score 5. Fair skin, several sunburns as a \
         child, no personal history of skin cancer; mother had a melanoma removed in her 60s.",
        "{age}-year-old with a pigmented lesion on the {site}, known to your service from an earlier referral. \
         Since then it has enlarged and changed colour, with a new darker area at one edge. On examination \
         asymmetrical with an irregular, partly blurred border and variable pigmentation including a \
         blue-grey area. Weighted 7-point checklist 5. No palpable regional lymph nodes.",
    ],
    durations: &["present for years; changing over the last 4 months", "changing for about 3 months"],
    medications: &[
        "Combined oral contraceptive. No known drug allergies.",
        "Nil regular. No known drug allergies.",
        "Sertraline 50 mg once daily. Allergy: penicillin (rash).",
    ],
    photos: &[(Overview, GpPractice), (CloseUp, GpPractice), (Dermoscopic, GpPractice)],
};

/// The same patient's first referral, months earlier (stage 0 of the changing naevus).
pub(crate) const NAEVUS_EARLIER: Case = Case {
    finding: Finding::Melanoma,
    urgency: Urgency::Routine,
    ages: (32, 72),
    skin_types: &[1, 2, 2, 3],
    sites: PIGMENTED_SITES,
    questions: &[
        "Mole on the {site}: patient anxious. Is this benign, and does it need removing?",
        "Please could you review this naevus? Patient worried as family history of melanoma.",
    ],
    histories: &[
        "{age}-year-old concerned about a mole on the {site} that {pronoun} first noticed a few years ago. \
         No definite change, no bleeding or itch. Mother had a melanoma in her 60s. On examination about \
         6 mm, fairly symmetrical, mid-brown, regular border. 7-point checklist score 1. Photos taken by the \
         patient at home via the practice's secure link.",
    ],
    durations: &["several years", "at least 3 years"],
    medications: &["Combined oral contraceptive. No known drug allergies.", "Nil regular."],
    photos: &[(CloseUp, PatientLink)],
};

pub(crate) const BASAL_CELL_CARCINOMA_URGENT: Case = Case {
    finding: Finding::BasalCellCarcinoma,
    urgency: Urgency::Urgent,
    ages: (62, 89),
    skin_types: &[1, 2],
    sites: &[site("left temple", Face), site("right cheek, below the lower eyelid", Face), site("forehead", Face)],
    questions: &[
        "?BCC close to the eye. Grateful for assessment and advice on management; is this one for Mohs?",
        "Suspected basal cell carcinoma, growing. Please advise whether this needs urgent excision.",
    ],
    histories: &[
        "{age}-year-old with a slowly growing pearly lesion on the {site}. Bled once after washing. \
         Retired farmer with lots of outdoor work; had a BCC excised from the back in 2019. On examination \
         7 mm pearly nodule with rolled edge and surface telangiectasia, central crust. No other suspicious \
         lesions seen.",
        "{age}-year-old with a lesion on the {site} that has grown over the last year and now catches on \
         {possessive} glasses. Shiny pink papule with rolled border and fine vessels; small central erosion. \
         Lives alone, mobile, keen to have it dealt with.",
    ],
    durations: &["about 12 months", "1 year, faster in the last 3 months"],
    medications: &[
        "Amlodipine 5 mg once daily; atorvastatin 20 mg at night; apixaban 5 mg twice daily (atrial fibrillation).",
        "Ramipril 5 mg once daily; metformin 500 mg twice daily. No known drug allergies.",
    ],
    photos: &[(Overview, GpPractice), (CloseUp, GpPractice)],
};

pub(crate) const BASAL_CELL_CARCINOMA: Case = Case {
    finding: Finding::BasalCellCarcinoma,
    urgency: Urgency::Routine,
    ages: (58, 88),
    skin_types: &[1, 2, 2, 3],
    sites: &[
        site("upper back", Back),
        site("left forearm, extensor surface", Forearm),
        site("right cheek", Face),
    ],
    questions: &[
        "?BCC. Please advise on diagnosis and whether surgery in primary care is appropriate.",
        "Suspected basal cell carcinoma. Grateful for your opinion and management plan.",
    ],
    histories: &[
        "{age}-year-old with a non-healing pink lesion on the {site}. Occasionally crusts and bleeds when \
         knocked, then heals partly. Worked outdoors for many years. On examination 6 mm pearly papule with \
         telangiectasia. No lymphadenopathy.",
    ],
    durations: &["6 months", "about 9 months"],
    medications: &[
        "Lisinopril 10 mg once daily; aspirin 75 mg once daily.",
        "Nil regular. Allergy: codeine (nausea).",
    ],
    photos: &[(Overview, GpPractice), (CloseUp, GpPractice)],
};

pub(crate) const SQUAMOUS_CELL_CARCINOMA: Case = Case {
    finding: Finding::SquamousCellCarcinoma,
    urgency: Urgency::TwoWeekWait,
    ages: (66, 92),
    skin_types: &[1, 2],
    sites: &[site("dorsum of the left hand", Hand), site("vertex of the scalp", Scalp), site("right forearm, extensor surface", Forearm)],
    questions: &[
        "Suspected squamous cell carcinoma: rapidly growing keratotic nodule. Two-week-wait referral.",
        "?SCC. Rapidly enlarging, tender keratotic lesion. Please see urgently under the cancer pathway.",
    ],
    histories: &[
        "{age}-year-old with a rapidly growing lump on the {site}, tender, with a central horn that \
         {pronoun} has picked off twice. Kidney transplant recipient 2011 on long-term immunosuppression. \
         Background of extensive actinic damage. On examination 14 mm firm erythematous nodule with central \
         keratin; no palpable epitrochlear or axillary nodes.",
        "{age}-year-old with a fast-growing crusted nodule on the {site}. Painful at night. Multiple actinic \
         keratoses treated with cryotherapy in the past. On examination 12 mm indurated nodule with thick \
         central keratin and surrounding erythema.",
    ],
    durations: &["6 weeks", "about 2 months"],
    medications: &[
        "Tacrolimus 2 mg twice daily; mycophenolate mofetil 500 mg twice daily; prednisolone 5 mg once daily.",
        "Bisoprolol 2.5 mg once daily; warfarin (INR 2.4 last week); furosemide 40 mg once daily.",
    ],
    photos: &[(Overview, GpPractice), (CloseUp, GpPractice), (Dermoscopic, GpPractice), (CloseUp, GpPractice)],
};

pub(crate) const SEBORRHOEIC_KERATOSIS: Case = Case {
    finding: Finding::SeborrhoeicKeratosis,
    urgency: Urgency::Routine,
    ages: (52, 86),
    skin_types: &[1, 2, 3, 4],
    sites: &[site("mid back", Back), site("left side of the chest", Chest), site("right flank", Back)],
    questions: &[
        "?Seborrhoeic keratosis vs pigmented lesion of concern. Grateful for reassurance or advice.",
        "Please could you confirm this is a seborrhoeic keratosis? Patient keen for removal as it catches on clothing.",
    ],
    histories: &[
        "{age}-year-old with a raised brown 'stuck-on' lesion on the {site} that catches on {possessive} \
         bra strap. Several similar smaller lesions elsewhere on the trunk. On examination 13 mm well-defined, \
         warty, waxy surface with visible keratin plugs. Dermoscopy taken in the practice.",
        "{age}-year-old with a dark warty lesion on the {site}, gradually enlarging over a couple of years. \
         Occasionally itchy. Multiple similar lesions on the back. No personal or family history of skin \
         cancer.",
    ],
    durations: &["2 years", "several years, larger over the last 6 months"],
    medications: &["Levothyroxine 75 micrograms once daily.", "Omeprazole 20 mg once daily; HRT patch."],
    photos: &[(CloseUp, GpPractice), (Dermoscopic, GpPractice)],
};

pub(crate) const ACTINIC_KERATOSIS: Case = Case {
    finding: Finding::ActinicKeratosis,
    urgency: Urgency::Routine,
    ages: (60, 88),
    skin_types: &[1, 2],
    sites: &[
        site("vertex of the scalp", Scalp),
        site("forehead", Face),
        site("dorsum of the right hand", Hand),
    ],
    questions: &[
        "Multiple rough scaly patches, ?actinic keratoses. Please advise on field treatment.",
        "?AK vs early SCC. Advice on treatment please; previous 5-fluorouracil cream poorly tolerated.",
    ],
    histories: &[
        "{age}-year-old with rough, scaly, slightly tender patches on the {site}. Long history of sun \
         exposure (keen golfer). Treated with 5-fluorouracil cream in 2021 with good effect but marked \
         irritation. On examination several ill-defined pink scaly patches, largest 12 mm, none indurated.",
    ],
    durations: &["about a year", "18 months, more patches recently"],
    medications: &["Tamsulosin 400 micrograms once daily; simvastatin 40 mg at night.", "Nil regular."],
    photos: &[(CloseUp, GpPractice), (Dermoscopic, GpPractice)],
};

pub(crate) const PSORIASIS_FLARE: Case = Case {
    finding: Finding::Psoriasis,
    urgency: Urgency::Urgent,
    ages: (22, 64),
    skin_types: &[2, 3, 4],
    sites: &[
        site("both knees and shins; photos of the right shin", Leg),
        site("extensor surfaces of both elbows and forearms; photos of the left forearm", Forearm),
    ],
    questions: &[
        "Extensive psoriasis flare not responding to topical treatment. ?Suitable for phototherapy or systemic treatment.",
        "Worsening chronic plaque psoriasis affecting sleep and work. Please advise on next steps; urgent if possible.",
    ],
    histories: &[
        "{age}-year-old with known chronic plaque psoriasis since {possessive} twenties, previously well \
         controlled. Major flare over the last 3 months after a stressful period at work, now about 12% body \
         surface area: {site}, scalp and lower back. DLQI 17. Mild joint stiffness in the mornings, no \
         swollen joints.",
        "{age}-year-old with chronic plaque psoriasis, flaring despite adherence to treatment. Plaques on the \
         {site}, lower back and scalp. Missing work. PEST score 2. Drinks about 20 units a week.",
    ],
    durations: &["psoriasis 15 years; current flare 3 months", "flare for 10 weeks"],
    medications: &[
        "Calcipotriol/betamethasone gel once daily for 8 weeks (partial response); emollients; coal tar shampoo.",
        "Calcipotriol/betamethasone foam, then clobetasol propionate 0.05% ointment to plaques for 4 weeks; ibuprofen as needed.",
    ],
    photos: &[(Overview, PatientLink), (Overview, PatientLink), (CloseUp, PatientLink)],
};

pub(crate) const PSORIASIS_EARLIER: Case = Case {
    finding: Finding::Psoriasis,
    urgency: Urgency::Routine,
    ages: (22, 64),
    skin_types: &[2, 3, 4],
    sites: PSORIASIS_FLARE.sites,
    questions: &["Chronic plaque psoriasis: grateful for advice on optimising topical treatment."],
    histories: &[
        "{age}-year-old with plaque psoriasis on the {site}, stable for years but more itchy recently. \
         Using emollients and a vitamin D analogue intermittently. No joint symptoms.",
    ],
    durations: &["psoriasis 15 years"],
    medications: &["Calcipotriol ointment twice daily; emollients."],
    photos: &[(Overview, GpPractice)],
};

pub(crate) const ECZEMA: Case = Case {
    finding: Finding::Eczema,
    urgency: Urgency::Routine,
    ages: (18, 58),
    skin_types: &[3, 4, 5, 6],
    sites: &[
        site("flexures of both elbows; photo of the right antecubital fossa", Forearm),
        site("backs of both hands and wrists", Hand),
    ],
    questions: &[
        "Adult atopic eczema poorly controlled despite topical steroids. ?Contact allergy: grateful for advice and patch testing.",
        "Chronic eczema, ?allergic contact dermatitis related to work. Please advise on management.",
    ],
    histories: &[
        "{age}-year-old with lifelong atopic eczema, worse over the last year, affecting the {site}. Very \
         itchy, disturbing sleep. Works as a hairdresser. Lichenified, excoriated patches with darker \
         pigmentation; no signs of infection. Asthma, well controlled.",
    ],
    durations: &["lifelong; worse for 12 months", "8 months"],
    medications: &[
        "Hydrocortisone 1% cream, then clobetasone butyrate 0.05% cream twice daily; emollient; cetirizine 10 mg at night; salbutamol inhaler.",
    ],
    photos: &[(Overview, GpPractice)],
};

pub(crate) const ACNE: Case = Case {
    finding: Finding::Acne,
    urgency: Urgency::Routine,
    ages: (15, 27),
    skin_types: &[2, 3, 4, 5, 6],
    sites: &[site("face, both cheeks and chin", Face), site("upper back and shoulders", Back)],
    questions: &[
        "Moderate to severe acne not responding to lymecycline. ?Suitable for isotretinoin.",
        "Persistent inflammatory acne with early scarring. Please assess for isotretinoin.",
    ],
    histories: &[
        "{age}-year-old with inflammatory acne on the {site} for several years. Completed 3 months of \
         lymecycline with topical adapalene/benzoyl peroxide, with only partial improvement. Early atrophic \
         scarring and post-inflammatory marks. Low mood because of the skin; PHQ-9 8, no thoughts of \
         self-harm. Photos taken by the patient at home.",
    ],
    durations: &["3 years", "about 4 years"],
    medications: &[
        "Lymecycline 408 mg once daily (3 months, stopped 2 weeks ago); adapalene/benzoyl peroxide gel at night.",
        "Combined oral contraceptive; adapalene 0.1% gel; previously doxycycline 100 mg for 3 months.",
    ],
    photos: &[(Overview, PatientLink), (Overview, PatientLink)],
};

pub(crate) const ROSACEA: Case = Case {
    finding: Finding::Rosacea,
    urgency: Urgency::Routine,
    ages: (34, 66),
    skin_types: &[1, 2, 3],
    sites: &[site("cheeks, nose and chin", Face)],
    questions: &["Papulopustular rosacea not settling with first-line treatment. Please advise."],
    histories: &[
        "{age}-year-old with facial redness and flushing for several years, now with crops of papules and \
         pustules on the {site}. Triggers: alcohol, hot drinks. Ivermectin cream for 12 weeks then \
         doxycycline 40 mg modified release for 8 weeks with little change. No eye symptoms. Photo sent by \
         the patient via the secure link.",
    ],
    durations: &["several years; papules for 6 months"],
    medications: &["Ivermectin 1% cream (12 weeks, stopped); doxycycline 40 mg modified release once daily."],
    photos: &[(Overview, PatientLink)],
};

pub(crate) const TINEA: Case = Case {
    finding: Finding::Tinea,
    urgency: Urgency::Routine,
    ages: (20, 70),
    skin_types: &[2, 3, 4, 5],
    sites: &[site("left side of the chest", Chest), site("lower back", Back), site("right inner thigh", Leg)],
    questions: &[
        "Annular scaly rash, ?tinea corporis vs discoid eczema. Not settling; grateful for advice.",
        "?Tinea incognito after topical steroid. Please advise on diagnosis and treatment.",
    ],
    histories: &[
        "{age}-year-old with an itchy, slowly expanding ring-shaped rash on the {site}. Initially treated as \
         eczema with hydrocortisone, which made it spread. Has a new kitten. On examination annular plaque \
         with a raised scaly edge and central clearing, with two smaller satellite lesions. Skin scrapings \
         sent: result awaited.",
    ],
    durations: &["6 weeks", "about 2 months"],
    medications: &["Clotrimazole 1% cream twice daily for 2 weeks; hydrocortisone 1% cream (stopped)."],
    photos: &[(Overview, GpPractice), (CloseUp, GpPractice)],
};

pub(crate) const NEW_MELANOMA: Case = Case {
    finding: Finding::Melanoma,
    urgency: Urgency::TwoWeekWait,
    ages: (28, 80),
    skin_types: &[1, 2, 3, 4],
    sites: PIGMENTED_SITES,
    questions: &[
        "Suspected melanoma. New, rapidly changing pigmented lesion. Two-week-wait referral.",
        "?Melanoma: new irregular pigmented lesion in an adult. Please see under the two-week-wait pathway.",
    ],
    histories: &[
        "{age}-year-old with a new dark lesion on the {site}, first noticed by {possessive} partner 4 months \
         ago and growing since. Occasionally itchy. Outdoor worker, burns easily. On examination 10 mm \
         asymmetrical lesion with irregular border and colour variation (dark brown, black, blue-grey, \
         pink). 7-point checklist 6.",
    ],
    durations: &["4 months", "noticed about 3 months ago"],
    medications: &["Nil regular. No known drug allergies.", "Metformin 500 mg twice daily; ramipril 2.5 mg once daily."],
    photos: &[(Overview, GpPractice), (CloseUp, GpPractice), (Dermoscopic, GpPractice)],
};

pub(crate) const MOLE_CHECK: Case = Case {
    finding: Finding::BenignNaevus,
    urgency: Urgency::Routine,
    ages: (20, 55),
    skin_types: &[1, 2, 3, 4, 5],
    sites: &[site("left upper arm", UpperArm), site("mid back", Back)],
    questions: &["Mole check: patient worried about a mole. Grateful for reassurance or advice on removal."],
    histories: &[
        "{age}-year-old worried about a mole on the {site} after a friend was diagnosed with melanoma. No \
         change reported. On examination 5 mm symmetrical, uniformly brown naevus with a regular border. \
         7-point checklist 0. Photos taken by the patient.",
    ],
    durations: &["many years"],
    medications: &["Nil regular."],
    photos: &[(CloseUp, PatientLink), (CloseUp, PatientLink)],
};
