//! Properties over generated input: the decoders never panic on hostile bytes, instants
//! round-trip, and a search's self link parses back to the same search.

mod common;

use common::{EXAMPLES, example_bytes};
use medledger_fhir::{
    DateRange, Handling, ResourceType, SearchQuery, format_instant, parse_resource, parse_transaction,
};
use proptest::prelude::*;

/// 9999-12-31T23:59:59.999Z.
const MAX_INSTANT_MS: u64 = 253_402_300_799_999;

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).expect("ascii");
            decoded.push(u8::from_str_radix(hex, 16).expect("hex"));
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).expect("utf-8")
}

fn pairs_of(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("name=value");
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn search_pair() -> impl Strategy<Value = (String, String)> {
    let name = prop::sample::select(vec![
        "_id",
        "_count",
        "_offset",
        "patient",
        "subject",
        "code",
        "category",
        "date",
        "foo",
        "code:text",
    ]);
    let value = prop::sample::select(vec![
        "pt-0123456789abcdef0123456789abcdef",
        "Patient/pt-0123456789abcdef0123456789abcdef",
        "http://loinc.org|4548-4",
        "|x",
        "sys|",
        "a\\,b,c",
        "ge2024-03",
        "ap2024-03-04T10:00Z",
        "2024-02-30",
        "7",
        "0",
        "",
        "é|ü&=%",
    ]);
    (name, value).prop_map(|(name, value)| (name.to_owned(), value.to_owned()))
}

proptest! {
    #[test]
    fn instants_round_trip(ms in 0..=MAX_INSTANT_MS) {
        let text = format_instant(ms);
        let range = DateRange::parse_instant(&text).expect("formatted instants parse");
        prop_assert_eq!(range.start_ms, i64::try_from(ms).expect("fits"));
        prop_assert_eq!(range.end_ms - range.start_ms, 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_resource(&bytes, ResourceType::Observation);
        let _ = parse_transaction(&bytes);
    }

    #[test]
    fn corrupted_examples_never_panic(example in 0..EXAMPLES.len(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let (name, resource_type) = EXAMPLES[example];
        let mut bytes = example_bytes(name);
        for (index, byte) in flips {
            let position = index.index(bytes.len());
            bytes[position] = byte;
        }
        let _ = parse_resource(&bytes, resource_type);
    }

    #[test]
    fn self_links_parse_back_to_the_same_search(pairs in prop::collection::vec(search_pair(), 0..8)) {
        let Ok(query) = SearchQuery::parse(ResourceType::Observation, &pairs, Handling::Lenient) else {
            return Ok(());
        };
        let again = SearchQuery::parse(ResourceType::Observation, &pairs_of(&query.self_link_query()), Handling::Strict)
            .expect("a self link only holds supported parameters with valid values");
        prop_assert_eq!(again.self_link_query(), query.self_link_query());
        prop_assert_eq!((again.count(), again.offset(), again.patient()), (query.count(), query.offset(), query.patient()));
    }
}
