#![no_main]

use dosi_iot::payload::ul;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(groups) = ul::decode(data) {
        // Whatever decodes is well formed, and re-encodes to the same groups.
        assert!(groups.iter().all(|g| !g.measures.is_empty()));
        assert!(groups
            .iter()
            .flat_map(|g| &g.measures)
            .all(|m| !m.name.is_empty()));
        let again = ul::decode(ul::encode(&groups).as_bytes());
        assert_eq!(again.as_ref(), Ok(&groups));
    }
    let _ = ul::decode_command_result(data);
});
