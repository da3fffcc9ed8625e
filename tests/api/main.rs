//! Black-box HTTP tests: each test boots a real Vestibule on a random port.

mod cli;
mod conformance;
mod deactivate;
mod devices;
mod discovery;
mod email;
mod errors;
mod events;
mod guest;
mod identity;
mod login;
mod login_token;
mod matrix_sdk_client;
mod moderation;
mod password;
mod peers;
mod postgres;
mod profile;
mod ratelimit;
mod refresh;
mod register;
mod registration_token;
mod seeds;
mod support;
mod terms;
mod uia;
