//! `dermdesk-icons`: writes the icon set into `icons/` from `icons/source.png` (run by
//! `cargo xtask icons`).

use std::process::ExitCode;

fn main() -> ExitCode {
    if let Some(extra) = std::env::args().nth(1) {
        eprintln!("dermdesk-icons: unknown option {extra}");
        return ExitCode::from(2);
    }
    match dermdesk_icons::write(&dermdesk_icons::root()) {
        Ok(written) => {
            for path in written {
                eprintln!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("dermdesk-icons: {error}");
            ExitCode::FAILURE
        }
    }
}
