//! Black-box HTTP tests: each test boots a real Vestibule on a random port.

mod cli;
mod conformance;
mod deactivate;
mod devices;
mod discovery;
mod errors;
mod legacy;
mod login;
mod matrix_sdk_client;
mod password;
mod postgres;
mod ratelimit;
mod refresh;
mod register;
mod support;
mod uia;
