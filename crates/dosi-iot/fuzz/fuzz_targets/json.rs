#![no_main]

use dosi_iot::payload::json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(groups) = json::decode(data) {
        assert!(groups.iter().all(|g| !g.measures.is_empty()));
    }
    let _ = json::decode_command_result(data);
});
