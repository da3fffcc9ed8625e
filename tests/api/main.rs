//! Black-box HTTP tests: each test boots a real Vestibule on a random port.

mod cli;
mod discovery;
mod errors;
mod login;
mod matrix_sdk_client;
mod postgres;
mod register;
mod support;
mod uia;
