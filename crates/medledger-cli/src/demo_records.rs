//! The dev chain's demo patient records, written through the records service exactly as a
//! FHIR client's transaction Bundles are: validated, sealed into St Mary's vault, anchored.

use medledger_crypto::SigningKey;
use medledger_node::Node;
use medledger_records::{Records, Requester};
use medledger_types::{PatientId, RecordId, ResourceType};

use crate::CliError;

/// The demo patients' charts: one transaction Bundle each (a Patient and their records).
/// Fictional people; `patient-1` and `patient-2` are also enrolled as patient members.
pub const PATIENT_BUNDLES: [(&str, &str); 3] = [
    ("patient-1", include_str!("../demo/patient-1.json")),
    ("patient-2", include_str!("../demo/patient-2.json")),
    ("patient-3", include_str!("../demo/patient-3.json")),
];

/// A 2 KiB Observation for the FHIR benchmark; its subject is replaced with a real patient.
pub const BENCH_OBSERVATION: &str = include_str!("../demo/bench-observation.json");

/// The subject the benchmark Observation names until it is replaced.
pub const BENCH_OBSERVATION_SUBJECT: &str = "Patient/pt-00000000000000000000000000000000";

/// The member `key` as the chain knows it now, as a records requester.
pub fn requester(node: &Node, key: &SigningKey) -> Result<Requester, CliError> {
    let public_key = key.public_key();
    let (account, organization) = node
        .with_chain(|chain| chain.active_member(&public_key))
        .ok_or_else(|| CliError::Config(format!("{public_key} is not an active member")))?;
    Ok(Requester { key: public_key, account, organization })
}

/// Writes every demo chart as `author`; answers each chart's patient id.
pub fn load(records: &Records, author: &Requester) -> Result<Vec<(&'static str, PatientId)>, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|error| CliError::Config(format!("tokio runtime: {error}")))?;
    let mut patients = Vec::with_capacity(PATIENT_BUNDLES.len());
    for (stem, bundle) in PATIENT_BUNDLES {
        let refused = |error: &dyn std::fmt::Display| CliError::Config(format!("demo chart {stem}: {error}"));
        let entries =
            medledger_fhir::parse_transaction(bundle.as_bytes()).map_err(|error| refused(&error))?;
        let written =
            runtime.block_on(records.transaction(author, entries)).map_err(|error| refused(&error))?;
        let patient = written
            .iter()
            .find(|written| written.resource_type == ResourceType::Patient)
            .ok_or_else(|| refused(&"the chart has no Patient"))?;
        let record =
            RecordId::parse_fhir_id(ResourceType::Patient, &patient.id).map_err(|error| refused(&error))?;
        patients.push((stem, PatientId(record.0)));
    }
    Ok(patients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_charts_and_the_bench_observation_are_valid_fhir() {
        for (stem, bundle) in PATIENT_BUNDLES {
            let entries = medledger_fhir::parse_transaction(bundle.as_bytes())
                .unwrap_or_else(|error| panic!("{stem}: {error}"));
            let ids: Vec<String> = entries
                .iter()
                .enumerate()
                .map(|(index, entry)| {
                    RecordId([u8::try_from(index).expect("few entries"); 16])
                        .fhir_id(entry.resource.resource_type())
                })
                .collect();
            let urns = medledger_fhir::urn_map(&entries, &ids);
            for entry in &entries {
                let resolved = entry.resolve(&urns).unwrap_or_else(|error| panic!("{stem}: {error}"));
                if resolved.resource_type() != ResourceType::Patient {
                    assert_eq!(
                        resolved.patient_reference(),
                        Some(ids[0].as_str()),
                        "{stem}: one patient's chart"
                    );
                }
            }
        }
        let observation =
            medledger_fhir::parse_resource(BENCH_OBSERVATION.as_bytes(), ResourceType::Observation)
                .expect("the bench observation is valid");
        assert_eq!(observation.patient_reference(), BENCH_OBSERVATION_SUBJECT.strip_prefix("Patient/"));
        let compact = serde_json::to_vec(observation.json()).expect("serializes");
        assert!((1_900..=2_300).contains(&compact.len()), "about 2 KiB: {}", compact.len());
    }
}
