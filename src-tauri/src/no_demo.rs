//! The product build (`--no-default-features`): no embedded demo. Neither the reference hub nor
//! the synthetic photo generator is linked (tests/hostile/demo_free.rs checks the dependency
//! tree); `--demo` is refused on the command line before this could be reached.

use std::path::PathBuf;

/// Never made in a product build: the type only keeps `Profile::hub` the same shape.
pub enum EmbeddedHub {}

impl EmbeddedHub {
    pub fn url(&self) -> &str {
        match *self {}
    }

    pub fn enrolment_code_for_new_desk(&self) -> Result<String, String> {
        match *self {}
    }
}

pub async fn start(
    _demo_dir: PathBuf,
    _fresh: bool,
    _clock: dermdesk_core::clock::SharedClock,
) -> Result<EmbeddedHub, String> {
    Err(crate::DEMO_NOT_AVAILABLE.to_owned())
}
