//! The project's one random generator lives in `cloudsentinel_core::rng`; the simulator draws
//! from it.

pub use cloudsentinel_core::rng::*;
