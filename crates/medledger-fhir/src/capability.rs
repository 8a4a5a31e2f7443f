//! The CapabilityStatement (`GET [base]/metadata`) and the `$verify` OperationDefinition.
//! Both are built from the tables validation and search use, so they state exactly what the
//! server does.

use medledger_types::ResourceType;
use serde_json::{Value, json};

use crate::search::params;
use crate::{FHIR_JSON_MEDIA_TYPE, FHIR_VERSION};

/// When what this crate supports last changed (CapabilityStatement.date). Update it with any
/// change to the element tables, search parameters or interactions.
pub const CAPABILITY_STATEMENT_DATE: &str = "2026-11-25";

/// The type-level and instance-level interactions every resource type supports.
pub const INTERACTIONS: &[&str] = &["read", "vread", "update", "create", "search-type", "history-instance"];

/// The name of the operation that checks a record version against its on-chain anchor.
pub const VERIFY_OPERATION: &str = "verify";

/// The canonical URL of the `$verify` OperationDefinition under `base_url`.
#[must_use]
pub fn verify_operation_url(base_url: &str) -> String {
    format!("{}/OperationDefinition/{VERIFY_OPERATION}", base_url.trim_end_matches('/'))
}

fn resource_capability(resource_type: ResourceType, base_url: &str) -> Value {
    let search_params: Vec<Value> = params(resource_type)
        .map(|param| json!({ "name": param.name, "type": param.kind.fhir_type(), "documentation": param.documentation }))
        .collect();
    let interactions: Vec<Value> = INTERACTIONS.iter().map(|code| json!({ "code": code })).collect();
    json!({
        "type": resource_type.as_str(),
        "interaction": interactions,
        "versioning": "versioned",
        "readHistory": true,
        "updateCreate": false,
        "conditionalCreate": false,
        "conditionalRead": "not-supported",
        "conditionalUpdate": false,
        "conditionalDelete": "not-supported",
        "referencePolicy": ["literal", "local"],
        "searchParam": search_params,
        "operation": [{ "name": VERIFY_OPERATION, "definition": verify_operation_url(base_url) }],
    })
}

/// The CapabilityStatement of a MedLedger node's FHIR API at `base_url`.
#[must_use]
pub fn capability_statement(base_url: &str, software_version: &str) -> Value {
    let base = base_url.trim_end_matches('/');
    let resources: Vec<Value> =
        ResourceType::ALL.iter().map(|&resource_type| resource_capability(resource_type, base)).collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": CAPABILITY_STATEMENT_DATE,
        "publisher": "MedLedger",
        "kind": "instance",
        "software": { "name": "MedLedger", "version": software_version },
        "implementation": { "description": "MedLedger node FHIR R4 API", "url": base },
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON_MEDIA_TYPE, "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Records are stored encrypted in their custodian's vault and anchored on the \
                MedLedger chain. Only relative references (Type/id) and, in transactions, urn:uuid: are accepted; \
                contained resources are not.",
            "security": {
                "description": "Every request is authenticated with an RFC 9421 HTTP message signature by a member \
                    key registered on the MedLedger chain, or with a Bearer token of a session opened that way. \
                    Access to patient data is decided from consent and care relationships on the ledger, and every \
                    access is recorded there.",
            },
            "resource": resources,
            "interaction": [{ "code": "transaction" }],
        }],
    })
}

/// The OperationDefinition of `$verify`: checks that the stored version of a record matches
/// the SHA-256 anchored on chain for it.
#[must_use]
pub fn verify_operation_definition(base_url: &str) -> Value {
    let types: Vec<&str> = ResourceType::ALL.iter().map(|resource_type| resource_type.as_str()).collect();
    json!({
        "resourceType": "OperationDefinition",
        "id": VERIFY_OPERATION,
        "url": verify_operation_url(base_url),
        "name": "Verify",
        "title": "Verify a record version against its ledger anchor",
        "status": "active",
        "kind": "operation",
        "affectsState": false,
        "code": VERIFY_OPERATION,
        "description": "Checks that the ciphertext of a record version in its custodian's vault has the SHA-256 \
            anchored for that version on the MedLedger chain, and that the anchor is in a committed block.",
        "resource": types,
        "system": false,
        "type": false,
        "instance": true,
        "parameter": [
            {
                "name": "version", "use": "in", "min": 0, "max": "1", "type": "positiveInt",
                "documentation": "The version to verify; the latest if absent",
            },
            {
                "name": "verified", "use": "out", "min": 1, "max": "1", "type": "boolean",
                "documentation": "Whether the stored version matches its anchor",
            },
            {
                "name": "ciphertextDigest", "use": "out", "min": 0, "max": "1", "type": "string",
                "documentation": "The SHA-256 of the version's ciphertext, as anchored (hex)",
            },
            {
                "name": "blockHeight", "use": "out", "min": 0, "max": "1", "type": "unsignedInt",
                "documentation": "The height of the block that committed the anchor",
            },
        ],
    })
}
