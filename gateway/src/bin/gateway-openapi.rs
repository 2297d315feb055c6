//! Prints the gateway's generated OpenAPI document, as committed in `gateway/openapi.json`:
//! `cargo run -p gateway --bin gateway-openapi > gateway/openapi.json`.

fn main() {
    print!("{}", gateway::openapi::committed_text());
}
