//! The one integration-test binary: every test runs the real `hopscope`
//! executable and checks what a user would see.

mod cli;
mod equivalence;
mod examples;
mod generated;

mod testdata;
mod util;
mod workflows;
