//! The hazard log's own test (docs/safety/hazard-log.md): every evidence test it names exists,
//! every risk it states is what the matrix gives, and every hazard has the fields DCB0129 asks
//! for. So the log cannot claim a control whose test was renamed or deleted.

use std::path::Path;

/// The fields every hazard has, in order.
const FIELDS: [&str; 8] = [
    "**Cause:**",
    "**Effect:**",
    "**Initial risk:**",
    "**Controls:**",
    "**Residual risk:**",
    "**Evidence:**",
    "**Status:**",
    "",
];

const SEVERITIES: [&str; 5] = ["Minor", "Significant", "Considerable", "Major", "Catastrophic"];
const LIKELIHOODS: [&str; 5] = ["Very low", "Low", "Medium", "High", "Very high"];
/// Rows: likelihood very low → very high; columns: severity minor → catastrophic.
const MATRIX: [[u8; 5]; 5] =
    [[1, 1, 2, 2, 3], [1, 2, 2, 3, 4], [2, 2, 3, 3, 4], [2, 3, 3, 4, 5], [3, 4, 4, 5, 5]];

/// One hazard: its heading and its text up to the next heading.
pub struct Hazard<'a> {
    pub heading: &'a str,
    pub body: &'a str,
}

pub fn hazards(log: &str) -> Vec<Hazard<'_>> {
    let mut found = Vec::new();
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    for line in log.split_inclusive('\n') {
        if let Some(heading) = line.strip_prefix("### ") {
            starts.push((offset, heading.trim()));
        }
        offset += line.len();
    }
    for (index, &(start, heading)) in starts.iter().enumerate() {
        let end = starts.get(index + 1).map_or(log.len(), |next| next.0);
        found.push(Hazard { heading, body: &log[start..end] });
    }
    found
}

/// The evidence items of a hazard: `path::test name` in backticks after "**Evidence:**".
pub fn evidence(body: &str) -> Vec<(&str, &str)> {
    let Some(start) = body.find("**Evidence:**") else { return Vec::new() };
    let rest = &body[start..];
    let end = rest.find("**Status:**").unwrap_or(rest.len());
    rest[..end].split('`').skip(1).step_by(2).filter_map(|item| item.split_once("::")).collect()
}

/// Whether the file at `root/path` holds the test `name`.
pub fn test_exists(root: &Path, path: &str, name: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(root.join(path)).map_err(|error| format!("{path}: {error}"))?;
    let found = if path.ends_with(".js") {
        text.contains(&format!("test(\"{name}\"")) || text.contains(&format!("test('{name}'"))
    } else {
        text.contains(&format!("fn {name}("))
    };
    if found {
        Ok(())
    } else {
        Err(format!("{path} has no test {name:?}"))
    }
}

/// "Major × Medium → **3**" → (severity, likelihood, stated risk).
fn risk(body: &str, field: &str) -> Result<(usize, usize, u8), String> {
    let line = body.lines().find(|line| line.contains(field)).ok_or(format!("no {field}"))?;
    let text = line.split(field).nth(1).unwrap_or("").trim();
    let (severity, rest) = text.split_once(" × ").ok_or(format!("{field} is not 'severity × likelihood'"))?;
    let (likelihood, stated) = rest.split_once(" → ").ok_or(format!("{field} has no '→ risk'"))?;
    let severity =
        SEVERITIES.iter().position(|s| *s == severity.trim()).ok_or(format!("severity {severity:?}"))?;
    let likelihood = LIKELIHOODS
        .iter()
        .position(|l| *l == likelihood.trim())
        .ok_or(format!("likelihood {likelihood:?}"))?;
    let stated: u8 = stated.trim().trim_matches('*').parse().map_err(|_| format!("risk {stated:?}"))?;
    Ok((severity, likelihood, stated))
}

/// Every problem with the log, in words (empty: the log is sound).
pub fn problems(log: &str, root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let hazards = hazards(log);
    for hazard in &hazards {
        let mut problem = |text: String| problems.push(format!("{}: {text}", hazard.heading));
        for field in FIELDS.iter().filter(|field| !field.is_empty()) {
            if !hazard.body.contains(field) {
                problem(format!("no {field}"));
            }
        }
        for field in ["**Initial risk:**", "**Residual risk:**"] {
            match risk(hazard.body, field) {
                Ok((severity, likelihood, stated)) => {
                    let matrix = MATRIX[likelihood][severity];
                    if matrix != stated {
                        problem(format!("{field} says {stated}, the matrix gives {matrix}"));
                    }
                }
                Err(error) => problem(error),
            }
        }
        let items = evidence(hazard.body);
        let status = hazard.body.split("**Status:**").nth(1).unwrap_or("").trim_start();
        if items.is_empty() {
            if !hazard.body.contains("**Evidence:** none yet") {
                problem("no evidence and it does not say \"none yet\"".into());
            }
            if !status.starts_with("open") {
                problem("no evidence yet, so it must be open".into());
            }
        }
        if !status.starts_with("open") && !status.starts_with("controlled") {
            problem(format!("status must be open or controlled: {:?}", status.lines().next()));
        }
        for (path, name) in items {
            if let Err(error) = test_exists(root, path, name) {
                problem(error);
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace")
    }

    #[test]
    fn every_evidence_test_the_hazard_log_names_exists() {
        let log = std::fs::read_to_string(root().join("docs/safety/hazard-log.md")).unwrap();
        let hazards = hazards(&log);
        assert!(hazards.len() >= 16, "{} hazards", hazards.len());
        let named: usize = hazards.iter().map(|hazard| evidence(hazard.body).len()).sum();
        assert!(named >= 40, "only {named} evidence tests named");
        let problems = problems(&log, root());
        assert!(problems.is_empty(), "docs/safety/hazard-log.md:\n{}", problems.join("\n"));
    }

    #[test]
    fn the_check_catches_a_renamed_test_a_wrong_risk_and_a_missing_field() {
        let good = "### H01 — x\n\n- **Cause:** c\n- **Effect:** e\n- **Initial risk:** Major × Medium → **3**\n\
                    - **Controls:** d\n- **Residual risk:** Major × Very low → **2**\n\
                    - **Evidence:** `xtask/src/hazard_log.rs::every_evidence_test_the_hazard_log_names_exists`\n\
                    - **Status:** controlled\n";
        assert_eq!(problems(good, root()), Vec::<String>::new());
        let renamed = good.replace("names_exists", "names_exist");
        assert!(problems(&renamed, root())[0].contains("has no test"), "{:?}", problems(&renamed, root()));
        let missing_file = good.replace("xtask/src/hazard_log.rs", "xtask/src/nowhere.rs");
        assert!(problems(&missing_file, root())[0].contains("nowhere.rs"));
        let wrong_risk = good.replace("Major × Medium → **3**", "Major × Medium → **2**");
        assert!(problems(&wrong_risk, root())[0].contains("the matrix gives 3"));
        let no_cause = good.replace("- **Cause:** c\n", "");
        assert!(problems(&no_cause, root())[0].contains("no **Cause:**"));
        let unproven = good.replace(
            "`xtask/src/hazard_log.rs::every_evidence_test_the_hazard_log_names_exists`",
            "none yet",
        );
        assert!(problems(&unproven, root())[0].contains("must be open"));
    }
}
