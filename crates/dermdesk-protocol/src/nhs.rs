//! The NHS number check, in one place for the hub, the app and the synthetic data: ten digits,
//! the tenth the modulus-11 check digit of the first nine (NHS Data Dictionary, "NHS Number").
//! Pure.

/// Why a string is not a valid NHS number, in words a clinician would use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("an NHS number is 10 digits")]
    NotTenDigits,
    #[error("the NHS number fails its check digit")]
    CheckDigit,
}

/// The modulus-11 check digit of the first nine digits, or `None` if the remainder makes it
/// 10 (no such number is ever issued) or the input is not nine ASCII digits.
pub fn nhs_check_digit(first_nine: &str) -> Option<u8> {
    if first_nine.len() != 9 || !first_nine.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let total: u32 = first_nine
        .bytes()
        .enumerate()
        .map(|(position, byte)| u32::from(byte - b'0') * (10 - position as u32))
        .sum();
    match 11 - total % 11 {
        11 => Some(0),
        10 => None,
        check => Some(check as u8),
    }
}

/// Checks an NHS number as sent on the wire: exactly 10 ASCII digits with a correct check digit.
pub fn check_nhs_number(nhs_number: &str) -> Result<(), NhsNumberError> {
    if nhs_number.len() != 10 || !nhs_number.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(NhsNumberError::NotTenDigits);
    }
    match nhs_check_digit(&nhs_number[..9]) {
        Some(check) if check == nhs_number.as_bytes()[9] - b'0' => Ok(()),
        _ => Err(NhsNumberError::CheckDigit),
    }
}

/// What a person typed or a letter printed ("943 476 5919", "943-476-5919") as the 10 digits,
/// if it is a valid NHS number: spaces and hyphens between digit groups are left out; nothing
/// else is.
pub fn parse_nhs_number(typed: &str) -> Result<String, NhsNumberError> {
    let trimmed = typed.trim();
    if !trimmed.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '-') {
        return Err(NhsNumberError::NotTenDigits);
    }
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    check_nhs_number(&digits)?;
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_numbers_pass_and_one_wrong_digit_fails() {
        // The NHS Data Dictionary's worked example, and the test range the synthetic data uses.
        for valid in ["9434765919", "9990000018", "9999999999", "4010232137"] {
            assert_eq!(check_nhs_number(valid), Ok(()), "{valid}");
        }
        assert_eq!(check_nhs_number("9434765918"), Err(NhsNumberError::CheckDigit));
        assert_eq!(check_nhs_number("9434765910"), Err(NhsNumberError::CheckDigit));
        // A remainder giving 10 is never issued, whatever the last digit.
        let never = (0..=9).map(|d| format!("123456781{d}")).filter(|n| nhs_check_digit(&n[..9]).is_none());
        for number in never {
            assert_eq!(check_nhs_number(&number), Err(NhsNumberError::CheckDigit), "{number}");
        }
    }

    #[test]
    fn anything_but_ten_digits_is_refused() {
        for bad in [
            "",
            "943476591",
            "94347659190",
            "12AB<i>x</i>",
            "943 476 5919",
            "９４３４７６５９１９",
            "9434765919\u{202e}",
        ] {
            assert_eq!(check_nhs_number(bad), Err(NhsNumberError::NotTenDigits), "{bad:?}");
        }
    }

    #[test]
    fn typed_numbers_with_spaces_or_hyphens_are_read_as_their_digits() {
        assert_eq!(parse_nhs_number(" 943 476 5919 ").as_deref(), Ok("9434765919"));
        assert_eq!(parse_nhs_number("943-476-5919").as_deref(), Ok("9434765919"));
        assert_eq!(parse_nhs_number("943 476 5918"), Err(NhsNumberError::CheckDigit));
        assert_eq!(parse_nhs_number("943.476.5919"), Err(NhsNumberError::NotTenDigits));
        assert_eq!(parse_nhs_number("943 476 591"), Err(NhsNumberError::NotTenDigits));
    }
}
