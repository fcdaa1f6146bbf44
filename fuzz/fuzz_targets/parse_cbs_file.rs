//! Parses arbitrary bytes as the files NBK's node reads from the core
//! banking system's exchange folders: a pacs.002 confirmation (inbox) and a
//! pacs.009 instruction (the outbox, re-read on restart and by the CBS
//! simulator).
//!
//! Properties: parsing never panics, whatever the XML (depth, entities,
//! encodings, amounts, dates); a parsed instruction written out again parses
//! to the same instruction.
#![no_main]

use dtenge_cbs::{instruction_xml, parse_confirmation, parse_instruction, parse_iso_datetime, parse_plain_amount};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_confirmation(data);
    if let Ok(instruction) = parse_instruction(data) {
        let written = instruction_xml(&instruction);
        let again = parse_instruction(written.as_bytes())
            .unwrap_or_else(|e| panic!("a parsed instruction, written out, does not parse: {e}\n{written}"));
        assert_eq!(again, instruction, "instruction changed on a round trip");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_plain_amount(text);
        let _ = parse_iso_datetime(text);
    }
});
