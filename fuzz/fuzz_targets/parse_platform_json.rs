//! Parses arbitrary bytes as `platform.json` (participants, keys, ledger
//! parameters), the file every service reads at start.
//!
//! Properties: parsing never panics; a parsed spec yields its directory and
//! writes out to JSON that parses to the same spec.
#![no_main]

use dtenge_platform::PlatformSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = serde_json::from_slice::<PlatformSpec>(data) else {
        return;
    };
    let directory = spec.directory();
    for node in spec.nodes() {
        let _ = directory.get(&node.id);
        let _ = spec.participant(node.id.as_str());
    }
    let text = serde_json::to_string(&spec).unwrap_or_else(|e| panic!("a parsed spec does not serialise: {e}"));
    let again: PlatformSpec =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("a written spec does not parse: {e}\n{text}"));
    assert_eq!(serde_json::to_string(&again).ok(), Some(text), "spec changed on a round trip");
});
