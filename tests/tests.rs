//! The one integration-test binary: every test runs the real `hopscope`
//! executable and checks what a user would see.

mod cli;
mod equivalence;
mod examples;
mod fuzz;
mod generated;
mod hostile;
mod realdata;

mod testdata;
mod util;
mod workflows;
