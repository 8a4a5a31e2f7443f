//! Reads, history and search, under the one access decision.

use medledger_fhir::SearchQuery;
use medledger_state::RecordHead;
use medledger_state::access::{AccessBasis, Reader, authorize_read};
use medledger_types::{Decode, Encode, RecordId, ResourceType};
use serde_json::Value;

use crate::remote::{FetchAnswer, FetchRequest};
use crate::{ReadVersion, RecordError, Records, Requester, parse_id};

/// Most records one search decrypts before it stops: bounds the cost of a broad search.
pub const MAX_SEARCH_CANDIDATES: usize = 10_000;

/// Most versions a history answer holds, newest first: bounds what one request decrypts
/// (and, for another organisation's record, fetches).
pub const MAX_HISTORY_VERSIONS: u64 = 100;

/// A page of search results.
#[derive(Debug, Clone)]
pub struct SearchPage {
    /// Matches the reader may see, in all.
    pub total: u64,
    /// This page's resources.
    pub resources: Vec<Value>,
}

impl Records {
    /// Reads a record: its latest version, or `version`. A record another organisation holds
    /// is fetched from that organisation's node.
    ///
    /// # Errors
    /// Not found, denied, tampered, or (for another organisation's record) not served.
    pub async fn read(
        &self,
        who: &Requester,
        resource_type: ResourceType,
        id: &str,
        version: Option<u64>,
    ) -> Result<ReadVersion, RecordError> {
        let record = parse_id(resource_type, id)?;
        let head = self.node.with_chain(|chain| chain.record(resource_type, &record));
        match head {
            Some(head) if head.custodian != self.custodian => {
                self.read_remote(who, resource_type, record, id, head, version).await
            }
            head => self.read_local(who, resource_type, record, id, version, head),
        }
    }

    /// Every version of a record the reader may see, newest first (at most
    /// [`MAX_HISTORY_VERSIONS`]).
    ///
    /// # Errors
    /// As [`Records::read`].
    pub async fn history(
        &self,
        who: &Requester,
        resource_type: ResourceType,
        id: &str,
    ) -> Result<Vec<ReadVersion>, RecordError> {
        let latest = self.read(who, resource_type, id, None).await?;
        let oldest = latest.version.saturating_sub(MAX_HISTORY_VERSIONS - 1).max(1);
        let mut versions = vec![];
        for version in (oldest..latest.version).rev() {
            versions.push(self.read(who, resource_type, id, Some(version)).await?);
        }
        versions.insert(0, latest);
        Ok(versions)
    }

    /// Searches the records this node holds; records the reader may not see are left out.
    ///
    /// # Errors
    /// A vault failure or a record that fails its integrity check.
    pub fn search(&self, who: &Requester, query: &SearchQuery) -> Result<SearchPage, RecordError> {
        let resource_type = query.resource_type();
        let candidates = match query.patient() {
            Some(patient) => self.vault.find(&self.vault.token("patient", patient), resource_type)?,
            None => self.vault.list(resource_type, None, MAX_SEARCH_CANDIDATES)?,
        };
        let mut matches = Vec::new();
        for (record, _) in candidates.into_iter().take(MAX_SEARCH_CANDIDATES) {
            let id = record.fhir_id(resource_type);
            let head = self.node.with_chain(|chain| chain.record(resource_type, &record));
            let read = match self.read_local(who, resource_type, record, &id, None, head) {
                Ok(read) => read,
                Err(RecordError::Denied(_) | RecordError::NotFound { .. }) => continue,
                Err(error) => return Err(error),
            };
            let resource = medledger_fhir::parse_resource(&read.body, resource_type).map_err(|_| {
                // The node validated it before sealing; anything else is damage at rest.
                RecordError::Tampered
            })?;
            if query.matches(&resource) {
                matches.push(resource.into_json());
            }
        }
        let total = matches.len() as u64;
        let offset = usize::try_from(query.offset()).unwrap_or(usize::MAX);
        let resources = matches.into_iter().skip(offset).take(query.count() as usize).collect();
        Ok(SearchPage { total, resources })
    }

    /// A record this node holds (or is writing). Members of the custodian organisation also
    /// see versions whose anchors are not final yet; everyone else sees anchored versions.
    pub(crate) fn read_local(
        &self,
        who: &Requester,
        resource_type: ResourceType,
        record: RecordId,
        id: &str,
        version: Option<u64>,
        head: Option<RecordHead>,
    ) -> Result<ReadVersion, RecordError> {
        let not_found = || RecordError::NotFound { resource_type, id: id.into() };
        let (latest, stored) = if who.organization.id == self.custodian {
            self.vault.head_and_version(resource_type, record, version)?.ok_or_else(not_found)?
        } else {
            let latest = head.as_ref().map(|head| head.version).ok_or_else(not_found)?;
            let stored = match medledger_vault::requested_version(version, latest) {
                Some(wanted) => self.vault.get(resource_type, record, wanted)?,
                None => None,
            };
            (latest, stored)
        };
        let version = version.unwrap_or(latest);
        let stored = stored.ok_or_else(not_found)?;
        let head = head.unwrap_or_else(|| RecordHead {
            custodian: self.custodian.clone(),
            patient: stored.patient,
            version: latest,
        });
        let basis = self.authorize(who, &head)?;
        let anchor = self.node.with_chain(|chain| chain.record_version(resource_type, &record, version));
        let body = self.vault.decrypt(&stored, anchor.as_ref().map(|anchor| &anchor.ciphertext_digest))?;
        Ok(ReadVersion { version, last_updated_ms: stored.last_updated_ms, body, anchor, basis })
    }

    /// A record another organisation holds, fetched from its node for a member of this one.
    async fn read_remote(
        &self,
        who: &Requester,
        resource_type: ResourceType,
        record: RecordId,
        id: &str,
        head: RecordHead,
        version: Option<u64>,
    ) -> Result<ReadVersion, RecordError> {
        if who.organization.id != self.custodian {
            return Err(RecordError::NotYourNode { organization: who.organization.id.clone() });
        }
        // The custodian decides; deciding here too spares it requests it would refuse.
        let basis = self.authorize(who, &head)?;
        let version = version.unwrap_or(head.version);
        let (anchor, custodian_node) = self.node.with_chain(|chain| {
            let anchor = chain.record_version(resource_type, &record, version);
            let organization = chain.registry().organizations.iter().find(|org| org.id == head.custodian);
            (anchor, organization.and_then(|org| org.node.as_ref()).map(|node| node.public_key))
        });
        let anchor = anchor.ok_or_else(|| RecordError::NotFound { resource_type, id: id.into() })?;
        let custodian_node =
            custodian_node.ok_or_else(|| RecordError::Remote(format!("{} runs no node", head.custodian)))?;
        let exchange = self
            .exchange
            .as_ref()
            .ok_or_else(|| RecordError::Remote("this node is not connected to other nodes".into()))?;
        let request = FetchRequest {
            reader: who.key,
            resource_type,
            record,
            version,
            recipient: self.vault.public_key(),
        };
        let answer = exchange
            .request(custodian_node, request.encode())
            .await
            .map_err(|error| RecordError::Remote(error.to_string()))?;
        match FetchAnswer::decode(&answer).map_err(|error| RecordError::Remote(error.to_string()))? {
            FetchAnswer::Served { last_updated_ms, ciphertext, wrapped_key } => {
                let body = self
                    .vault
                    .open_foreign(
                        resource_type,
                        record,
                        version,
                        &ciphertext,
                        &wrapped_key,
                        &anchor.ciphertext_digest,
                    )
                    .map_err(|_| {
                        RecordError::Remote("the answer does not match the record's anchor".into())
                    })?;
                Ok(ReadVersion { version, last_updated_ms, body, anchor: Some(anchor), basis })
            }
            FetchAnswer::Refused { refusal, reason } => Err(refusal.into_error(resource_type, id, reason)),
        }
    }

    pub(crate) fn authorize(&self, who: &Requester, head: &RecordHead) -> Result<AccessBasis, RecordError> {
        let reader = Reader { account: &who.account, organization: &who.organization };
        self.node.with_chain(|chain| authorize_read(chain, &reader, head)).map_err(RecordError::from)
    }
}
