//! The ten R4 resources MedLedger keeps: their elements (R4 names, types and cardinalities),
//! required bindings, invariants, where their patient and search keys are, and which search
//! parameters they support. The validator, the search parser and the CapabilityStatement all
//! read these tables, so what is validated, searched and advertised cannot drift apart.
//!
//! References may only point at the types MedLedger keeps, so each `Reference(...)` lists the
//! R4 targets that are among them; an R4 element whose targets are all elsewhere (Encounter,
//! Location, Medication, …) has an empty list and refuses every literal reference.

use medledger_types::ResourceType::{
    self, AllergyIntolerance, Condition, DocumentReference, MedicationDispense, MedicationRequest,
    Observation, Organization, Patient, Practitioner, Provenance,
};
use serde_json::{Map, Value};

use crate::datatypes::{
    ADDRESS, AGE, ANNOTATION, ATTACHMENT, CODEABLE_CONCEPT, CODING, CONTACT_POINT, DOSAGE, DURATION,
    HUMAN_NAME, IDENTIFIER, PERIOD, QUANTITY, RANGE, RATIO, SAMPLED_DATA, SIGNATURE, SIMPLE_QUANTITY,
};
use crate::schema::{
    ANY_REFERENCE, BOOLEAN, Binding, CANONICAL, Complex, DATE, DATE_TIME, Element, INSTANT, INTEGER, Kind,
    Rule, STRING, TIME, UNSIGNED_INT, URI, many, one, pick, reference, req, req_many, req_pick,
};
use crate::search::{ParamKind, SearchParam, TokenField};
use crate::{DateRange, FhirError};

/// Where a resource names the patient it belongs to.
#[derive(Clone, Copy)]
pub(crate) enum PatientSource {
    /// Not patient data.
    None,
    /// The resource is the patient: its own `id`.
    OwnId,
    /// A `Reference(Patient)` element.
    Element(&'static str),
    /// The Patient among a list of references to any type (Provenance.target).
    AmongTargets(&'static str),
}

/// Where a resource's categories are.
#[derive(Clone, Copy)]
pub(crate) enum CategorySource {
    None,
    /// CodeableConcept elements.
    Concept(&'static str),
    /// `code` elements of a code system fixed by R4.
    Code {
        element: &'static str,
        system: &'static str,
    },
}

/// Everything this crate knows about one resource type.
pub(crate) struct TypeSpec {
    pub resource_type: ResourceType,
    pub elements: &'static [Element],
    pub rule: Option<Rule>,
    pub patient: PatientSource,
    /// Paths (dot-separated, through arrays) of the CodeableConcepts searched by `code`/`type`.
    pub code_paths: &'static [&'static str],
    pub category: CategorySource,
    /// Search parameters besides the common ones (`_id`, `_count`, `_offset`).
    pub search: &'static [SearchParam],
}

/// The spec of `resource_type`.
pub(crate) fn spec(resource_type: ResourceType) -> &'static TypeSpec {
    let spec = SPECS.iter().find(|spec| spec.resource_type == resource_type);
    spec.expect("SPECS has an entry for every ResourceType (checked by a test)")
}

/// A backbone element with its own table (an anonymous static).
macro_rules! backbone {
    ($elements:expr, $rule:expr $(,)?) => {
        Kind::Complex(&Complex { elements: $elements, backbone: true, rule: $rule })
    };
}

const fn code(codes: &'static [&'static str]) -> Kind {
    Kind::Code(codes)
}

const fn param(name: &'static str, kind: ParamKind, documentation: &'static str) -> SearchParam {
    SearchParam { name, kind, documentation }
}

const PATIENT_PARAM: SearchParam = param("patient", ParamKind::Patient, "The patient: Patient/[id] or [id]");
const SUBJECT_PARAM: SearchParam =
    param("subject", ParamKind::Patient, "The subject, which MedLedger only allows to be a Patient");
const CODE_PARAM: SearchParam =
    param("code", ParamKind::Token(TokenField::Codes), "The code: [system]|[code]");
const CATEGORY_PARAM: SearchParam =
    param("category", ParamKind::Token(TokenField::Categories), "The category: [system]|[code]");

static SPECS: [TypeSpec; 10] = [
    TypeSpec {
        resource_type: Patient,
        elements: PATIENT,
        rule: None,
        patient: PatientSource::OwnId,
        code_paths: &[],
        category: CategorySource::None,
        search: &[param("birthdate", ParamKind::Date(&["birthDate"]), "The patient's date of birth")],
    },
    TypeSpec {
        resource_type: Practitioner,
        elements: PRACTITIONER,
        rule: None,
        patient: PatientSource::None,
        code_paths: &[],
        category: CategorySource::None,
        search: &[],
    },
    TypeSpec {
        resource_type: Organization,
        elements: ORGANIZATION,
        rule: Some(organization_rule),
        patient: PatientSource::None,
        code_paths: &[],
        category: CategorySource::None,
        search: &[],
    },
    TypeSpec {
        resource_type: Observation,
        elements: OBSERVATION,
        rule: Some(value_or_absent_reason),
        patient: PatientSource::Element("subject"),
        code_paths: &["code"],
        category: CategorySource::Concept("category"),
        search: &[
            PATIENT_PARAM,
            SUBJECT_PARAM,
            CODE_PARAM,
            CATEGORY_PARAM,
            param(
                "date",
                ParamKind::Date(&["effectiveDateTime", "effectivePeriod", "effectiveInstant"]),
                "When the observation applies (effective[x])",
            ),
        ],
    },
    TypeSpec {
        resource_type: Condition,
        elements: CONDITION,
        rule: Some(condition_rule),
        patient: PatientSource::Element("subject"),
        code_paths: &["code"],
        category: CategorySource::Concept("category"),
        search: &[
            PATIENT_PARAM,
            SUBJECT_PARAM,
            CODE_PARAM,
            CATEGORY_PARAM,
            param(
                "onset-date",
                ParamKind::Date(&["onsetDateTime", "onsetPeriod"]),
                "Onset as a date or period",
            ),
            param(
                "recorded-date",
                ParamKind::Date(&["recordedDate"]),
                "When the condition was first recorded",
            ),
            param(
                "abatement-date",
                ParamKind::Date(&["abatementDateTime", "abatementPeriod"]),
                "Abatement as a date or period",
            ),
        ],
    },
    TypeSpec {
        resource_type: AllergyIntolerance,
        elements: ALLERGY_INTOLERANCE,
        rule: Some(allergy_rule),
        patient: PatientSource::Element("patient"),
        code_paths: &["code", "reaction.substance"],
        category: CategorySource::Code {
            element: "category",
            system: "http://hl7.org/fhir/allergy-intolerance-category",
        },
        search: &[
            PATIENT_PARAM,
            param("code", ParamKind::Token(TokenField::Codes), "The substance: code or reaction.substance"),
            param(
                "category",
                ParamKind::Token(TokenField::Categories),
                "food | medication | environment | biologic",
            ),
            param("date", ParamKind::Date(&["recordedDate"]), "When the record was first recorded"),
            param("onset", ParamKind::Date(&["reaction.onset"]), "When a reaction started"),
            param("last-date", ParamKind::Date(&["lastOccurrence"]), "When the last reaction happened"),
        ],
    },
    TypeSpec {
        resource_type: MedicationRequest,
        elements: MEDICATION_REQUEST,
        rule: None,
        patient: PatientSource::Element("subject"),
        code_paths: &["medicationCodeableConcept"],
        category: CategorySource::Concept("category"),
        search: &[
            PATIENT_PARAM,
            SUBJECT_PARAM,
            param(
                "code",
                ParamKind::Token(TokenField::Codes),
                "The medication code (medicationCodeableConcept)",
            ),
            CATEGORY_PARAM,
            param("authoredon", ParamKind::Date(&["authoredOn"]), "When the prescription was written"),
        ],
    },
    TypeSpec {
        resource_type: MedicationDispense,
        elements: MEDICATION_DISPENSE,
        rule: Some(dispense_rule),
        patient: PatientSource::Element("subject"),
        code_paths: &["medicationCodeableConcept"],
        category: CategorySource::None,
        search: &[
            PATIENT_PARAM,
            SUBJECT_PARAM,
            param(
                "code",
                ParamKind::Token(TokenField::Codes),
                "The medication code (medicationCodeableConcept)",
            ),
            param(
                "whenhandedover",
                ParamKind::Date(&["whenHandedOver"]),
                "When the medication was handed over",
            ),
            param("whenprepared", ParamKind::Date(&["whenPrepared"]), "When the medication was prepared"),
        ],
    },
    TypeSpec {
        resource_type: DocumentReference,
        elements: DOCUMENT_REFERENCE,
        rule: None,
        patient: PatientSource::Element("subject"),
        code_paths: &["type"],
        category: CategorySource::Concept("category"),
        search: &[
            PATIENT_PARAM,
            SUBJECT_PARAM,
            param("type", ParamKind::Token(TokenField::Codes), "The kind of document: [system]|[code]"),
            CATEGORY_PARAM,
            param("date", ParamKind::Date(&["date"]), "When this document reference was created"),
            param("period", ParamKind::Date(&["context.period"]), "The period of care the document covers"),
        ],
    },
    TypeSpec {
        resource_type: Provenance,
        elements: PROVENANCE,
        rule: None,
        patient: PatientSource::AmongTargets("target"),
        code_paths: &[],
        category: CategorySource::None,
        search: &[
            param("patient", ParamKind::Patient, "The Patient among the targets: Patient/[id] or [id]"),
            param("recorded", ParamKind::Date(&["recorded"]), "When the activity was recorded"),
            param(
                "when",
                ParamKind::Date(&["occurredDateTime", "occurredPeriod"]),
                "When the activity occurred",
            ),
        ],
    },
];

const ADMINISTRATIVE_GENDER: &[&str] = &["male", "female", "other", "unknown"];

static PATIENT: &[Element] = &[
    many("identifier", IDENTIFIER),
    one("active", BOOLEAN),
    many("name", HUMAN_NAME),
    many("telecom", CONTACT_POINT),
    one("gender", code(ADMINISTRATIVE_GENDER)),
    one("birthDate", DATE),
    pick("deceased[x]", "deceasedBoolean", BOOLEAN),
    pick("deceased[x]", "deceasedDateTime", DATE_TIME),
    many("address", ADDRESS),
    one("maritalStatus", CODEABLE_CONCEPT),
    pick("multipleBirth[x]", "multipleBirthBoolean", BOOLEAN),
    pick("multipleBirth[x]", "multipleBirthInteger", INTEGER),
    many("photo", ATTACHMENT),
    many(
        "contact",
        backbone!(
            &[
                many("relationship", CODEABLE_CONCEPT),
                one("name", HUMAN_NAME),
                many("telecom", CONTACT_POINT),
                one("address", ADDRESS),
                one("gender", code(ADMINISTRATIVE_GENDER)),
                one("organization", reference(&[Organization])),
                one("period", PERIOD),
            ],
            Some(patient_contact_rule),
        ),
    ),
    many("communication", backbone!(&[req("language", CODEABLE_CONCEPT), one("preferred", BOOLEAN)], None)),
    many("generalPractitioner", reference(&[Organization, Practitioner])),
    one("managingOrganization", reference(&[Organization])),
    many(
        "link",
        backbone!(
            &[
                req("other", reference(&[Patient])),
                req("type", code(&["replaced-by", "replaces", "refer", "seealso"]))
            ],
            None
        ),
    ),
];

static PRACTITIONER: &[Element] = &[
    many("identifier", IDENTIFIER),
    one("active", BOOLEAN),
    many("name", HUMAN_NAME),
    many("telecom", CONTACT_POINT),
    many("address", ADDRESS),
    one("gender", code(ADMINISTRATIVE_GENDER)),
    one("birthDate", DATE),
    many("photo", ATTACHMENT),
    many(
        "qualification",
        backbone!(
            &[
                many("identifier", IDENTIFIER),
                req("code", CODEABLE_CONCEPT),
                one("period", PERIOD),
                one("issuer", reference(&[Organization])),
            ],
            None,
        ),
    ),
    many("communication", CODEABLE_CONCEPT),
];

static ORGANIZATION: &[Element] = &[
    many("identifier", IDENTIFIER),
    one("active", BOOLEAN),
    many("type", CODEABLE_CONCEPT),
    one("name", STRING),
    many("alias", STRING),
    many("telecom", CONTACT_POINT),
    many("address", ADDRESS),
    one("partOf", reference(&[Organization])),
    many(
        "contact",
        backbone!(
            &[
                one("purpose", CODEABLE_CONCEPT),
                one("name", HUMAN_NAME),
                many("telecom", CONTACT_POINT),
                one("address", ADDRESS),
            ],
            None,
        ),
    ),
    many("endpoint", reference(&[])),
];

/// Observation.value[x] and Observation.component.value[x].
macro_rules! observation_value {
    () => {
        [
            pick("value[x]", "valueQuantity", QUANTITY),
            pick("value[x]", "valueCodeableConcept", CODEABLE_CONCEPT),
            pick("value[x]", "valueString", STRING),
            pick("value[x]", "valueBoolean", BOOLEAN),
            pick("value[x]", "valueInteger", INTEGER),
            pick("value[x]", "valueRange", RANGE),
            pick("value[x]", "valueRatio", RATIO),
            pick("value[x]", "valueSampledData", SAMPLED_DATA),
            pick("value[x]", "valueTime", TIME),
            pick("value[x]", "valueDateTime", DATE_TIME),
            pick("value[x]", "valuePeriod", PERIOD),
        ]
    };
}

const OBSERVATION_VALUE: [Element; 11] = observation_value!();

const REFERENCE_RANGE: Kind = backbone!(
    &[
        one("low", SIMPLE_QUANTITY),
        one("high", SIMPLE_QUANTITY),
        one("type", CODEABLE_CONCEPT),
        many("appliesTo", CODEABLE_CONCEPT),
        one("age", RANGE),
        one("text", STRING),
    ],
    Some(reference_range_rule),
);

static OBSERVATION: &[Element] = &[
    many("identifier", IDENTIFIER),
    many("basedOn", reference(&[MedicationRequest])),
    many("partOf", reference(&[MedicationDispense])),
    req(
        "status",
        code(&[
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        ]),
    ),
    many("category", CODEABLE_CONCEPT),
    req("code", CODEABLE_CONCEPT),
    one("subject", reference(&[Patient])),
    many("focus", ANY_REFERENCE),
    one("encounter", reference(&[])),
    pick("effective[x]", "effectiveDateTime", DATE_TIME),
    pick("effective[x]", "effectivePeriod", PERIOD),
    pick("effective[x]", "effectiveTiming", crate::datatypes::TIMING),
    pick("effective[x]", "effectiveInstant", INSTANT),
    one("issued", INSTANT),
    many("performer", reference(&[Practitioner, Organization, Patient])),
    OBSERVATION_VALUE[0],
    OBSERVATION_VALUE[1],
    OBSERVATION_VALUE[2],
    OBSERVATION_VALUE[3],
    OBSERVATION_VALUE[4],
    OBSERVATION_VALUE[5],
    OBSERVATION_VALUE[6],
    OBSERVATION_VALUE[7],
    OBSERVATION_VALUE[8],
    OBSERVATION_VALUE[9],
    OBSERVATION_VALUE[10],
    one("dataAbsentReason", CODEABLE_CONCEPT),
    many("interpretation", CODEABLE_CONCEPT),
    many("note", ANNOTATION),
    one("bodySite", CODEABLE_CONCEPT),
    one("method", CODEABLE_CONCEPT),
    one("specimen", reference(&[])),
    one("device", reference(&[])),
    many("referenceRange", REFERENCE_RANGE),
    many("hasMember", reference(&[Observation])),
    many("derivedFrom", reference(&[DocumentReference, Observation])),
    many(
        "component",
        backbone!(
            &[
                req("code", CODEABLE_CONCEPT),
                OBSERVATION_VALUE[0],
                OBSERVATION_VALUE[1],
                OBSERVATION_VALUE[2],
                OBSERVATION_VALUE[3],
                OBSERVATION_VALUE[4],
                OBSERVATION_VALUE[5],
                OBSERVATION_VALUE[6],
                OBSERVATION_VALUE[7],
                OBSERVATION_VALUE[8],
                OBSERVATION_VALUE[9],
                OBSERVATION_VALUE[10],
                one("dataAbsentReason", CODEABLE_CONCEPT),
                many("interpretation", CODEABLE_CONCEPT),
                many("referenceRange", REFERENCE_RANGE),
            ],
            Some(value_or_absent_reason),
        ),
    ),
];

static CONDITION_CLINICAL: Binding = Binding {
    system: "http://terminology.hl7.org/CodeSystem/condition-clinical",
    codes: &["active", "recurrence", "relapse", "inactive", "remission", "resolved"],
};

static CONDITION_VERIFICATION: Binding = Binding {
    system: "http://terminology.hl7.org/CodeSystem/condition-ver-status",
    codes: &["unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"],
};

/// Condition.onset[x] and Condition.abatement[x] share these types.
macro_rules! condition_moment {
    ($group:literal, $date_time:literal, $age:literal, $period:literal, $range:literal, $string:literal) => {
        [
            pick($group, $date_time, DATE_TIME),
            pick($group, $age, AGE),
            pick($group, $period, PERIOD),
            pick($group, $range, RANGE),
            pick($group, $string, STRING),
        ]
    };
}

const ONSET: [Element; 5] =
    condition_moment!("onset[x]", "onsetDateTime", "onsetAge", "onsetPeriod", "onsetRange", "onsetString");
const ABATEMENT: [Element; 5] = condition_moment!(
    "abatement[x]",
    "abatementDateTime",
    "abatementAge",
    "abatementPeriod",
    "abatementRange",
    "abatementString"
);

static CONDITION: &[Element] = &[
    many("identifier", IDENTIFIER),
    one("clinicalStatus", Kind::BoundConcept(&CONDITION_CLINICAL)),
    one("verificationStatus", Kind::BoundConcept(&CONDITION_VERIFICATION)),
    many("category", CODEABLE_CONCEPT),
    one("severity", CODEABLE_CONCEPT),
    one("code", CODEABLE_CONCEPT),
    many("bodySite", CODEABLE_CONCEPT),
    req("subject", reference(&[Patient])),
    one("encounter", reference(&[])),
    ONSET[0],
    ONSET[1],
    ONSET[2],
    ONSET[3],
    ONSET[4],
    ABATEMENT[0],
    ABATEMENT[1],
    ABATEMENT[2],
    ABATEMENT[3],
    ABATEMENT[4],
    one("recordedDate", DATE_TIME),
    one("recorder", reference(&[Practitioner, Patient])),
    one("asserter", reference(&[Practitioner, Patient])),
    many(
        "stage",
        backbone!(
            &[
                one("summary", CODEABLE_CONCEPT),
                many("assessment", reference(&[Observation])),
                one("type", CODEABLE_CONCEPT)
            ],
            Some(stage_rule),
        ),
    ),
    many(
        "evidence",
        backbone!(&[many("code", CODEABLE_CONCEPT), many("detail", ANY_REFERENCE)], Some(evidence_rule)),
    ),
    many("note", ANNOTATION),
];

static ALLERGY_CLINICAL: Binding = Binding {
    system: "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
    codes: &["active", "inactive", "resolved"],
};

static ALLERGY_VERIFICATION: Binding = Binding {
    system: "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
    codes: &["unconfirmed", "confirmed", "refuted", "entered-in-error"],
};

static ALLERGY_INTOLERANCE: &[Element] = &[
    many("identifier", IDENTIFIER),
    one("clinicalStatus", Kind::BoundConcept(&ALLERGY_CLINICAL)),
    one("verificationStatus", Kind::BoundConcept(&ALLERGY_VERIFICATION)),
    one("type", code(&["allergy", "intolerance"])),
    many("category", code(&["food", "medication", "environment", "biologic"])),
    one("criticality", code(&["low", "high", "unable-to-assess"])),
    one("code", CODEABLE_CONCEPT),
    req("patient", reference(&[Patient])),
    one("encounter", reference(&[])),
    ONSET[0],
    ONSET[1],
    ONSET[2],
    ONSET[3],
    ONSET[4],
    one("recordedDate", DATE_TIME),
    one("recorder", reference(&[Practitioner, Patient])),
    one("asserter", reference(&[Patient, Practitioner])),
    one("lastOccurrence", DATE_TIME),
    many("note", ANNOTATION),
    many(
        "reaction",
        backbone!(
            &[
                one("substance", CODEABLE_CONCEPT),
                req_many("manifestation", CODEABLE_CONCEPT),
                one("description", STRING),
                one("onset", DATE_TIME),
                one("severity", code(&["mild", "moderate", "severe"])),
                one("exposureRoute", CODEABLE_CONCEPT),
                many("note", ANNOTATION),
            ],
            None,
        ),
    ),
];

/// Who can order or perform, among the types MedLedger keeps.
const ACTORS: &[ResourceType] = &[Practitioner, Organization, Patient];

static MEDICATION_REQUEST: &[Element] = &[
    many("identifier", IDENTIFIER),
    req(
        "status",
        code(&[
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        ]),
    ),
    one("statusReason", CODEABLE_CONCEPT),
    req(
        "intent",
        code(&[
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        ]),
    ),
    many("category", CODEABLE_CONCEPT),
    one("priority", code(&["routine", "urgent", "asap", "stat"])),
    one("doNotPerform", BOOLEAN),
    pick("reported[x]", "reportedBoolean", BOOLEAN),
    pick("reported[x]", "reportedReference", reference(ACTORS)),
    req_pick("medication[x]", "medicationCodeableConcept", CODEABLE_CONCEPT),
    req_pick("medication[x]", "medicationReference", reference(&[])),
    req("subject", reference(&[Patient])),
    one("encounter", reference(&[])),
    many("supportingInformation", ANY_REFERENCE),
    one("authoredOn", DATE_TIME),
    one("requester", reference(ACTORS)),
    one("performer", reference(ACTORS)),
    one("performerType", CODEABLE_CONCEPT),
    one("recorder", reference(&[Practitioner])),
    many("reasonCode", CODEABLE_CONCEPT),
    many("reasonReference", reference(&[Condition, Observation])),
    many("instantiatesCanonical", CANONICAL),
    many("instantiatesUri", URI),
    many("basedOn", reference(&[MedicationRequest])),
    one("groupIdentifier", IDENTIFIER),
    one("courseOfTherapyType", CODEABLE_CONCEPT),
    many("insurance", reference(&[])),
    many("note", ANNOTATION),
    many("dosageInstruction", DOSAGE),
    one(
        "dispenseRequest",
        backbone!(
            &[
                one(
                    "initialFill",
                    backbone!(&[one("quantity", SIMPLE_QUANTITY), one("duration", DURATION)], None)
                ),
                one("dispenseInterval", DURATION),
                one("validityPeriod", PERIOD),
                one("numberOfRepeatsAllowed", UNSIGNED_INT),
                one("quantity", SIMPLE_QUANTITY),
                one("expectedSupplyDuration", DURATION),
                one("performer", reference(&[Organization])),
            ],
            None,
        ),
    ),
    one(
        "substitution",
        backbone!(
            &[
                req_pick("allowed[x]", "allowedBoolean", BOOLEAN),
                req_pick("allowed[x]", "allowedCodeableConcept", CODEABLE_CONCEPT),
                one("reason", CODEABLE_CONCEPT),
            ],
            None,
        ),
    ),
    one("priorPrescription", reference(&[MedicationRequest])),
    many("detectedIssue", reference(&[])),
    many("eventHistory", reference(&[Provenance])),
];

static MEDICATION_DISPENSE: &[Element] = &[
    many("identifier", IDENTIFIER),
    many("partOf", reference(&[])),
    req(
        "status",
        code(&[
            "preparation",
            "in-progress",
            "cancelled",
            "on-hold",
            "completed",
            "entered-in-error",
            "stopped",
            "declined",
            "unknown",
        ]),
    ),
    pick("statusReason[x]", "statusReasonCodeableConcept", CODEABLE_CONCEPT),
    pick("statusReason[x]", "statusReasonReference", reference(&[])),
    one("category", CODEABLE_CONCEPT),
    req_pick("medication[x]", "medicationCodeableConcept", CODEABLE_CONCEPT),
    req_pick("medication[x]", "medicationReference", reference(&[])),
    one("subject", reference(&[Patient])),
    one("context", reference(&[])),
    many("supportingInformation", ANY_REFERENCE),
    many("performer", backbone!(&[one("function", CODEABLE_CONCEPT), req("actor", reference(ACTORS))], None)),
    one("location", reference(&[])),
    many("authorizingPrescription", reference(&[MedicationRequest])),
    one("type", CODEABLE_CONCEPT),
    one("quantity", SIMPLE_QUANTITY),
    one("daysSupply", SIMPLE_QUANTITY),
    one("whenPrepared", DATE_TIME),
    one("whenHandedOver", DATE_TIME),
    one("destination", reference(&[])),
    many("receiver", reference(&[Patient, Practitioner])),
    many("note", ANNOTATION),
    many("dosageInstruction", DOSAGE),
    one(
        "substitution",
        backbone!(
            &[
                req("wasSubstituted", BOOLEAN),
                one("type", CODEABLE_CONCEPT),
                many("reason", CODEABLE_CONCEPT),
                many("responsibleParty", reference(&[Practitioner])),
            ],
            None,
        ),
    ),
    many("detectedIssue", reference(&[])),
    many("eventHistory", reference(&[Provenance])),
];

static DOCUMENT_REFERENCE: &[Element] = &[
    one("masterIdentifier", IDENTIFIER),
    many("identifier", IDENTIFIER),
    req("status", code(&["current", "superseded", "entered-in-error"])),
    one("docStatus", code(&["preliminary", "final", "amended", "entered-in-error"])),
    one("type", CODEABLE_CONCEPT),
    many("category", CODEABLE_CONCEPT),
    one("subject", reference(&[Patient])),
    one("date", INSTANT),
    many("author", reference(ACTORS)),
    one("authenticator", reference(&[Practitioner, Organization])),
    one("custodian", reference(&[Organization])),
    many(
        "relatesTo",
        backbone!(
            &[
                req("code", code(&["replaces", "transforms", "signs", "appends"])),
                req("target", reference(&[DocumentReference]))
            ],
            None,
        ),
    ),
    one("description", STRING),
    many("securityLabel", CODEABLE_CONCEPT),
    req_many("content", backbone!(&[req("attachment", ATTACHMENT), one("format", CODING)], None)),
    one(
        "context",
        backbone!(
            &[
                many("encounter", reference(&[])),
                many("event", CODEABLE_CONCEPT),
                one("period", PERIOD),
                one("facilityType", CODEABLE_CONCEPT),
                one("practiceSetting", CODEABLE_CONCEPT),
                one("sourcePatientInfo", reference(&[Patient])),
                many("related", ANY_REFERENCE),
            ],
            None,
        ),
    ),
];

/// Provenance.agent, also used for Provenance.entity.agent.
const PROVENANCE_AGENT: Kind = backbone!(
    &[
        one("type", CODEABLE_CONCEPT),
        many("role", CODEABLE_CONCEPT),
        req("who", reference(ACTORS)),
        one("onBehalfOf", reference(ACTORS)),
    ],
    None,
);

static PROVENANCE: &[Element] = &[
    req_many("target", ANY_REFERENCE),
    pick("occurred[x]", "occurredPeriod", PERIOD),
    pick("occurred[x]", "occurredDateTime", DATE_TIME),
    req("recorded", INSTANT),
    many("policy", URI),
    one("location", reference(&[])),
    many("reason", CODEABLE_CONCEPT),
    one("activity", CODEABLE_CONCEPT),
    req_many("agent", PROVENANCE_AGENT),
    many(
        "entity",
        backbone!(
            &[
                req("role", code(&["derivation", "revision", "quotation", "source", "removal"])),
                req("what", ANY_REFERENCE),
                many("agent", PROVENANCE_AGENT),
            ],
            None,
        ),
    ),
    many("signature", SIGNATURE),
];

/// Whether a CodeableConcept at `name` has a coding of `binding`'s system with one of `codes`.
fn has_code(map: &Map<String, Value>, name: &str, binding: &Binding, codes: &[&str]) -> bool {
    let codings = map.get(name).and_then(|concept| concept.get("coding")).and_then(Value::as_array);
    codings.into_iter().flatten().any(|coding| {
        coding.get("system").and_then(Value::as_str) == Some(binding.system)
            && coding.get("code").and_then(Value::as_str).is_some_and(|code| codes.contains(&code))
    })
}

fn has_any(map: &Map<String, Value>, prefix: &str) -> bool {
    map.keys().any(|key| key.starts_with(prefix))
}

fn patient_contact_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    if ["name", "telecom", "address", "organization"].iter().any(|name| map.contains_key(*name)) {
        return Ok(());
    }
    Err(FhirError::invariant(path, "pat-1", "a contact has a name, telecom, address or organization"))
}

fn organization_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    if !map.contains_key("name") && !map.contains_key("identifier") {
        return Err(FhirError::invariant(
            path,
            "org-1",
            "an organization has at least a name or an identifier",
        ));
    }
    let uses = |name: &str| -> bool {
        let items = map.get(name).and_then(Value::as_array);
        items.into_iter().flatten().any(|item| item.get("use").and_then(Value::as_str) == Some("home"))
    };
    if uses("address") {
        return Err(FhirError::invariant(path, "org-2", "an organization's address is never of use home"));
    }
    if uses("telecom") {
        return Err(FhirError::invariant(path, "org-3", "an organization's telecom is never of use home"));
    }
    Ok(())
}

/// obs-6: dataAbsentReason only when there is no value[x] (on Observation and its components).
fn value_or_absent_reason(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    if map.contains_key("dataAbsentReason") && has_any(map, "value") {
        return Err(FhirError::invariant(
            path,
            "obs-6",
            "dataAbsentReason is only present when value[x] is not",
        ));
    }
    Ok(())
}

fn reference_range_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    if ["low", "high", "text"].iter().any(|name| map.contains_key(*name)) {
        return Ok(());
    }
    Err(FhirError::invariant(path, "obs-3", "a reference range has at least a low, a high or a text"))
}

fn condition_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    let entered_in_error =
        has_code(map, "verificationStatus", &CONDITION_VERIFICATION, &["entered-in-error"]);
    if entered_in_error && map.contains_key("clinicalStatus") {
        return Err(FhirError::invariant(
            path,
            "con-5",
            "clinicalStatus is absent when verificationStatus is entered-in-error",
        ));
    }
    let settled =
        has_code(map, "clinicalStatus", &CONDITION_CLINICAL, &["inactive", "resolved", "remission"]);
    if has_any(map, "abatement") && map.contains_key("clinicalStatus") && !settled {
        return Err(FhirError::invariant(
            path,
            "con-4",
            "with an abatement, clinicalStatus is inactive, resolved or remission",
        ));
    }
    Ok(())
}

fn stage_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    if map.contains_key("summary") || map.contains_key("assessment") {
        return Ok(());
    }
    Err(FhirError::invariant(path, "con-1", "a stage has a summary or an assessment"))
}

fn evidence_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    if map.contains_key("code") || map.contains_key("detail") {
        return Ok(());
    }
    Err(FhirError::invariant(path, "con-2", "evidence has a code or a detail"))
}

fn allergy_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    let entered_in_error = has_code(map, "verificationStatus", &ALLERGY_VERIFICATION, &["entered-in-error"]);
    match (entered_in_error, map.contains_key("clinicalStatus")) {
        (false, false) => Err(FhirError::invariant(
            path,
            "ait-1",
            "clinicalStatus is present unless verificationStatus is entered-in-error",
        )),
        (true, true) => Err(FhirError::invariant(
            path,
            "ait-2",
            "clinicalStatus is absent when verificationStatus is entered-in-error",
        )),
        _ => Ok(()),
    }
}

fn dispense_rule(map: &Map<String, Value>, path: &str) -> Result<(), FhirError> {
    let moment = |name: &str| {
        map.get(name).and_then(Value::as_str).and_then(|text| DateRange::parse_date_time(text).ok())
    };
    if let (Some(prepared), Some(handed_over)) = (moment("whenPrepared"), moment("whenHandedOver"))
        && handed_over.end_ms <= prepared.start_ms
    {
        return Err(FhirError::invariant(path, "mdd-1", "whenHandedOver is not before whenPrepared"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_type_has_one_spec() {
        for &resource_type in ResourceType::ALL {
            assert_eq!(SPECS.iter().filter(|spec| spec.resource_type == resource_type).count(), 1);
        }
    }

    #[test]
    fn element_names_are_unique_and_choices_consistent() {
        for spec in &SPECS {
            let mut names: Vec<&str> = spec.elements.iter().map(|element| element.name).collect();
            names.sort_unstable();
            let count = names.len();
            names.dedup();
            assert_eq!(names.len(), count, "{}", spec.resource_type);
        }
    }
}
