//! Synthetic people and places: patient names, NHS numbers in the range reserved for testing,
//! GP practices with made-up ODS codes, and the clinicians who refer. Names are drawn from
//! separate first-name and surname lists and paired at random, so every combination is made up.

use dermdesk_protocol::{GpPractice, Nation, Referrer, Sex};
use rand::seq::SliceRandom;
use rand::Rng;

const FEMALE_FIRST_NAMES: &[&str] = &[
    "Amara",
    "Bethan",
    "Chloe",
    "Deborah",
    "Eleni",
    "Fatima",
    "Grace",
    "Harpreet",
    "Ioana",
    "Joanne",
    "Kerry-Ann",
    "Leila",
    "Maeve",
    "Niamh",
    "Olufunke",
    "Priya",
    "Rhiannon",
    "Siobhan",
    "Tamsin",
    "Usha",
    "Wei",
    "Yasmin",
    "Zofia",
    "Ayesha",
    "Morag",
    "Sinead",
    "Hannah",
    "Margaret",
];

const MALE_FIRST_NAMES: &[&str] = &[
    "Aled", "Bilal", "Callum", "Declan", "Emeka", "Farhan", "Gareth", "Hamish", "Idris", "Jakub", "Kwame",
    "Lewis", "Mohammed", "Nikhil", "Owain", "Piotr", "Rory", "Sanjay", "Tomasz", "Tunde", "Vikram", "Wesley",
    "Yusuf", "Zain", "Ciaran", "Graham", "Desmond", "Trevor",
];

const SURNAMES: &[&str] = &[
    "Adeyemi",
    "Ashworth",
    "Bajwa",
    "Blackwood",
    "Brennan",
    "Carmichael",
    "Chowdhury",
    "Cieślak",
    "Davenport",
    "Dhillon",
    "Ellery",
    "Fairbairn",
    "Fenwick",
    "Gallagher",
    "Hargreaves",
    "Hussain",
    "Ibekwe",
    "Jankowski",
    "Kaur",
    "Kettering",
    "Llewellyn",
    "McAllister",
    "Mensah",
    "Nowak",
    "Obi",
    "O'Rourke",
    "Patel",
    "Pemberton",
    "Quigley",
    "Rahman",
    "Rowntree",
    "Sandhu",
    "Thorne",
    "Tremayne",
    "Underwood",
    "Varga",
    "Whitlock",
    "Wójcik",
    "Yilmaz",
    "Zhang",
];

/// A made-up patient's name for `sex`: a first name and a surname from separate lists, paired
/// at random (for benchmarks that need many distinct synthetic patients).
pub fn synthetic_patient_name(rng: &mut impl Rng, sex: Sex) -> String {
    patient_name(rng, sex)
}

/// A patient's name for `sex`.
pub(crate) fn patient_name(rng: &mut impl Rng, sex: Sex) -> String {
    format!("{} {}", first_name(rng, sex), SURNAMES.choose(rng).copied().unwrap_or("Smith"))
}

fn first_name(rng: &mut impl Rng, sex: Sex) -> &'static str {
    let names = match sex {
        Sex::Female => FEMALE_FIRST_NAMES,
        Sex::Male => MALE_FIRST_NAMES,
        Sex::Other | Sex::NotKnown => {
            if rng.gen_bool(0.5) {
                FEMALE_FIRST_NAMES
            } else {
                MALE_FIRST_NAMES
            }
        }
    };
    names.choose(rng).copied().unwrap_or("Alex")
}

/// The first NHS number of the range reserved for testing; every number from here to
/// 999 999 9999 is guaranteed never to belong to a real patient.
const TEST_RANGE_START: u64 = 9_990_000_000;

/// A random ten-digit NHS number in the range reserved for testing (999 000 0000 to
/// 999 999 9999) with a valid modulus-11 check digit.
pub fn synthetic_nhs_number<R: Rng + ?Sized>(rng: &mut R) -> String {
    loop {
        // The first nine digits; the tenth is the check digit.
        let stem = TEST_RANGE_START / 10 + rng.gen_range(0..1_000_000);
        let digits = stem.to_string();
        if let Some(check) = dermdesk_protocol::nhs::nhs_check_digit(&digits) {
            return format!("{digits}{check}");
        }
        // A stem whose check digit would be 10 is never issued; draw another.
    }
}

/// True if `nhs_number` is ten digits with a valid modulus-11 check digit (the protocol's check,
/// the same the hub and the app apply).
pub fn nhs_number_is_valid(nhs_number: &str) -> bool {
    dermdesk_protocol::check_nhs_number(nhs_number).is_ok()
}

/// True if `nhs_number` is valid and in the range reserved for testing.
pub fn nhs_number_is_synthetic(nhs_number: &str) -> bool {
    nhs_number_is_valid(nhs_number)
        && nhs_number.parse::<u64>().is_ok_and(|number| number >= TEST_RANGE_START)
}

/// A GP practice of the demo with the clinicians who refer from it.
#[derive(Debug, Clone)]
pub(crate) struct Practice {
    pub practice: GpPractice,
    pub referrers: Vec<Referrer>,
}

const ENGLISH_PRACTICES: &[&str] = &[
    "Riverside Medical Centre",
    "Oakfield Surgery",
    "Beechwood Health Centre",
    "Castle Street Surgery",
    "Meadowbank Group Practice",
    "The Willows Medical Practice",
    "Abbey Lane Surgery",
    "Northgate Health Centre",
];
const WELSH_PRACTICES: &[&str] = &["Bryn Teg Surgery", "Glan yr Afon Medical Practice"];
const SCOTTISH_PRACTICES: &[&str] = &["Braeside Medical Practice", "Kelvinhaugh Health Centre"];
const NORTHERN_IRISH_PRACTICES: &[&str] = &["Lough View Health Centre", "Ballyholme Surgery"];

/// The practices of one demo: mostly English, one each from Wales, Scotland and Northern
/// Ireland. ODS codes start "Y0", a prefix no real GP practice uses.
pub(crate) fn practices(rng: &mut impl Rng) -> Vec<Practice> {
    let mut english: Vec<&str> = ENGLISH_PRACTICES.to_vec();
    english.shuffle(rng);
    let mut chosen: Vec<(&str, Nation)> =
        english.into_iter().take(4).map(|name| (name, Nation::England)).collect();
    for (names, nation) in [
        (WELSH_PRACTICES, Nation::Wales),
        (SCOTTISH_PRACTICES, Nation::Scotland),
        (NORTHERN_IRISH_PRACTICES, Nation::NorthernIreland),
    ] {
        chosen.push((names.choose(rng).copied().unwrap_or(names[0]), nation));
    }
    let mut codes: Vec<u32> = Vec::new();
    chosen
        .into_iter()
        .map(|(name, nation)| {
            let code = loop {
                let code = rng.gen_range(1000..10_000);
                if !codes.contains(&code) {
                    codes.push(code);
                    break code;
                }
            };
            let sex = if rng.gen_bool(0.5) { Sex::Female } else { Sex::Male };
            let doctor = Referrer {
                name: format!(
                    "Dr {} {}",
                    first_name(rng, sex),
                    SURNAMES.choose(rng).copied().unwrap_or("Smith")
                ),
                role: "GP".to_owned(),
            };
            let nurse = Referrer {
                name: format!(
                    "{} {}",
                    first_name(rng, Sex::Female),
                    SURNAMES.choose(rng).copied().unwrap_or("Jones")
                ),
                role: "Advanced Nurse Practitioner".to_owned(),
            };
            Practice {
                practice: GpPractice { ods_code: format!("Y0{code}"), name: name.to_owned(), nation },
                referrers: vec![doctor, nurse],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn check_digit_matches_a_published_example() {
        // 943 476 5919 is the example NHS England uses to explain the modulus-11 check.
        assert!(nhs_number_is_valid("9434765919"));
        assert!(!nhs_number_is_valid("9434765918"));
        assert!(!nhs_number_is_valid("943476591"));
        assert!(!nhs_number_is_valid("94347659x9"));
    }

    #[test]
    fn synthetic_numbers_are_valid_and_in_the_test_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..2_000 {
            let number = synthetic_nhs_number(&mut rng);
            assert!(nhs_number_is_synthetic(&number), "{number}");
            assert!(number.starts_with("999"), "{number}");
        }
    }

    #[test]
    fn practices_are_mostly_english_with_unique_codes() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let practices = practices(&mut rng);
        let english = practices.iter().filter(|practice| practice.practice.nation == Nation::England).count();
        assert!(english > practices.len() / 2);
        let mut codes: Vec<&str> =
            practices.iter().map(|practice| practice.practice.ods_code.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), practices.len());
        assert!(codes.iter().all(|code| code.len() == 6 && code.starts_with("Y0")));
    }
}
