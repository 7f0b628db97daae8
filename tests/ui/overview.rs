//! overview pages.

#[allow(unused_imports)]
use super::*;
