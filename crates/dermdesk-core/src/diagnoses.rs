//! The diagnosis picklist: common dermatology diagnoses with their SNOMED CT concept ids, a
//! plan template for the GP and a patient information page. Data, not code: `data/diagnoses.json`
//! (sources and how each id was checked: `data/README.md`), compiled into the binary.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientInformation {
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// SNOMED CT concept id, as a string; `None` while the id is not confirmed (the term is
    /// still offered, and an outcome using it is signed without a code).
    pub concept_id: Option<String>,
    pub term: String,
    #[serde(default)]
    pub synonyms: Vec<String>,
    pub group: String,
    /// Governance: a suspected malignancy must be seen face to face.
    pub suspected_malignancy: bool,
    pub patient_information: Option<PatientInformation>,
    pub plan_template: String,
    /// Why the entry has no code yet.
    #[serde(default)]
    pub code_note: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Picklist {
    diagnoses: Vec<Diagnosis>,
}

/// Every diagnosis on the picklist, in the data file's order.
pub fn all() -> &'static [Diagnosis] {
    static LIST: OnceLock<Vec<Diagnosis>> = OnceLock::new();
    LIST.get_or_init(|| {
        // The file is part of the build and checked by the tests below: a parse failure is a
        // build defect, not a runtime condition.
        let picklist: Picklist =
            serde_json::from_str(include_str!("../data/diagnoses.json")).expect("data/diagnoses.json parses");
        picklist.diagnoses
    })
}

/// The picklist entry for a SNOMED CT concept id.
pub fn find(concept_id: &str) -> Option<&'static Diagnosis> {
    all().iter().find(|d| d.concept_id.as_deref() == Some(concept_id))
}

/// True when the outcome's coded diagnosis is flagged as a suspected malignancy.
pub fn is_suspected_malignancy(concept_id: Option<&str>) -> bool {
    concept_id.and_then(find).is_some_and(|d| d.suspected_malignancy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picklist_is_large_well_formed_and_unique() {
        let list = all();
        let coded = list.iter().filter(|d| d.concept_id.is_some()).count();
        assert!(coded >= 60, "the issue asks for at least ~60 coded diagnoses, got {coded}");
        let mut ids = std::collections::HashSet::new();
        let mut terms = std::collections::HashSet::new();
        for diagnosis in list {
            assert!(terms.insert(diagnosis.term.to_lowercase()), "{} appears twice", diagnosis.term);
            let Some(id) = &diagnosis.concept_id else {
                assert!(diagnosis.code_note.is_some(), "{}: an uncoded entry says why", diagnosis.term);
                continue;
            };
            assert!(id.len() >= 6 && id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0'), "{id}");
            assert!(verhoeff_ok(id), "{id} fails the SNOMED CT check digit");
            assert!(ids.insert(id.clone()), "{id} appears twice");
            assert!(!diagnosis.term.trim().is_empty() && !diagnosis.plan_template.trim().is_empty(), "{id}");
            if let Some(info) = &diagnosis.patient_information {
                assert!(info.url.starts_with("https://www.skinhealthinfo.org.uk/"), "{}", info.url);
            }
        }
    }

    /// SNOMED CT identifiers end in a Verhoeff check digit.
    fn verhoeff_ok(id: &str) -> bool {
        const D: [[u8; 10]; 10] = [
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
            [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
            [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
            [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
            [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
            [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
            [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
            [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
            [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
        ];
        const P: [[u8; 10]; 8] = [
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
            [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
            [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
            [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
            [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
            [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
            [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
        ];
        let mut check = 0u8;
        for (i, digit) in id.bytes().rev().enumerate() {
            check = D[check as usize][P[i % 8][(digit - b'0') as usize] as usize];
        }
        check == 0
    }

    #[test]
    fn the_cancers_the_issue_names_are_flagged_as_suspected_malignancy() {
        for term in ["melanoma", "basal cell carcinoma", "squamous cell carcinoma"] {
            let hits: Vec<_> = all().iter().filter(|d| d.term.to_lowercase().contains(term)).collect();
            assert!(!hits.is_empty(), "{term} is on the picklist");
            assert!(hits.iter().any(|d| d.suspected_malignancy), "{term} is flagged");
        }
        for term in ["seborrhoeic keratosis", "psoriasis", "acne", "urticaria", "tinea", "eczema"] {
            assert!(
                all().iter().any(|d| d.term.to_lowercase().contains(term) && !d.suspected_malignancy),
                "{term}"
            );
        }
    }
}
