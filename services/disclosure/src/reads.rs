//! The reading handlers: one disclosure (with its delivery record), and a page of summaries.
//!
//! Invariant: every read is logged before anything is returned: a reveal of protected details
//! and any read by a compliance officer in the audit log itself, every other Get and every page
//! of a List committed in the outbox (who, when, which disclosures, the persons concerned as
//! keyed references; on the disk within about 200 ms, see `tryggdel_storage`'s group commit),
//! and none while the audit log is known not to answer.

use tryggdel_auth::Role;
use tryggdel_proto::disclosure::v1::{
    Disclosure, GetRequest, ListOrder, ListRequest, ListResponse,
};
use tryggdel_service_kit::{Caller, ServiceError, page_size, today_in_sweden};

use crate::api::DisclosureApi;
use crate::checks::parse_disclosure_id;
use crate::policy::{self, READERS};
use crate::store::{DisclosureRecord, ListFilter, ListOrder as StoreOrder};
use crate::wire::{self, wire_delivery};

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 200;

impl DisclosureApi {
    pub(crate) async fn get(
        &self,
        caller: &Caller,
        request: GetRequest,
    ) -> Result<Disclosure, ServiceError> {
        let id = parse_disclosure_id(&request.disclosure_id)?;
        let (record, delivery) = self
            .store
            .get_with_delivery(&id)
            .await?
            .filter(|(record, _)| policy::may_see(caller, record))
            .ok_or(ServiceError::NotFound("disclosure"))?;
        let revealed = request.reveal_protected;
        let answer = || -> Result<Disclosure, ServiceError> {
            let mut disclosure = if revealed {
                self.revealed_view(&record)?
            } else {
                self.masked_view(&record)?
            };
            disclosure.delivery = delivery.clone().map(wire_delivery);
            if !caller.has(Role::PoliceOfficer) {
                disclosure.payload_preview = self.payload_preview(&record, revealed)?;
            }
            Ok(disclosure)
        };
        if revealed {
            let delegations = self.delegations_for(&record).await?;
            policy::require_revealer(&delegations, today_in_sweden(), caller, &record)?;
            let fields = [("fields", "address,workplace,school,shelter".into())];
            self.audit_read(caller, &record, "disclosure.protected_revealed", &fields)
                .await?;
            tracing::info!(disclosure_id = %record.id, user = %caller.user(), "protected details revealed");
            return answer();
        }
        // The masked answer is built while its read is being logged (the log's write waits
        // for a commit, the answer is work on this core); it is returned only once the read
        // is logged, and dropped if that fails.
        let logged = async {
            if caller.has(Role::ComplianceOfficer) {
                self.audit_read(caller, &record, "disclosure.read", &[])
                    .await
            } else {
                self.log_access(caller, &[&record], "disclosure.read").await
            }
        };
        let (logged, disclosure) = tokio::join!(logged, async { answer() });
        logged?;
        disclosure
    }

    pub(crate) async fn list(
        &self,
        caller: &Caller,
        request: ListRequest,
    ) -> Result<ListResponse, ServiceError> {
        caller.require_any(&READERS, "listing disclosures")?;
        let state = wire::state_filter(request.state)?;
        if request.page_size > MAX_PAGE_SIZE {
            return Err(ServiceError::invalid(
                "page_size",
                format!("at most {MAX_PAGE_SIZE}"),
            ));
        }
        if request.created_from_unix_ms < 0 || request.created_until_unix_ms < 0 {
            return Err(ServiceError::invalid(
                "created_from_unix_ms",
                "times must not be negative",
            ));
        }
        let page_size = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
        let wire_order = ListOrder::try_from(request.order)
            .map_err(|_| ServiceError::invalid("order", "not a known list order"))?;
        let order = match (wire_order, request.page_token.as_str()) {
            (ListOrder::NewestFirst, "") => StoreOrder::NewestFirst { after: None },
            (ListOrder::NewestFirst, token) => StoreOrder::NewestFirst {
                after: Some(wire::page_position(token)?),
            },
            (ListOrder::DecisionQueue, "") => StoreOrder::DecisionQueue { after: None },
            (ListOrder::DecisionQueue, token) => StoreOrder::DecisionQueue {
                after: Some(wire::queue_position(token)?),
            },
        };
        let organisation = (!policy::lists_every_organisation(caller))
            .then(|| caller.organisation.code().as_str().to_owned());
        let records = self
            .store
            .list(&ListFilter {
                organisation,
                state,
                created_from: request.created_from_unix_ms,
                created_until: request.created_until_unix_ms,
                order,
                limit: i64::from(page_size) + 1,
            })
            .await?;
        let page = &records[..records.len().min(page_size as usize)];
        let next_page_token = match page.last() {
            Some(last) if records.len() > page.len() => wire::page_token_after(last, wire_order),
            _ => String::new(),
        };
        let read: Vec<&DisclosureRecord> = page.iter().collect();
        self.log_access(caller, &read, "disclosure.listed").await?;
        Ok(ListResponse {
            disclosures: page
                .iter()
                .map(|record| wire::summary(record, &self.expiry))
                .collect(),
            next_page_token,
        })
    }
}
