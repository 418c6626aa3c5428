//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa).

use axum::body::Bytes;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::wire;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Admin-Key"))),
        );
    }
}

/// The API description served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ticketing",
        description = "Seat and ticket inventory: reserve with a hold, commit after payment, cancel, refund, transfer, check in. Errors are RFC 9457 problem documents carrying a stable `code`."
    ),
    modifiers(&Security),
    paths(
        crate::events::create_event,
        crate::events::list_events,
        crate::events::seatmap,
        crate::sse::changes,
        crate::events::block,
        crate::events::update_pool,
        crate::handlers::reserve,
        crate::handlers::get_reservation,
        crate::handlers::commit,
        crate::handlers::extend,
        crate::handlers::cancel,
        crate::handlers::delete_reservation,
        crate::handlers::get_order,
        crate::handlers::refund,
        crate::handlers::transfer,
        crate::handlers::check_in,
        crate::queue::join,
        crate::queue::room,
        crate::queue::configure,
        crate::queue::status,
        crate::waitlist::join,
        crate::waitlist::entry,
        crate::waitlist::leave,
        crate::queue::leave,
        crate::events::healthz,
        crate::events::readyz,
        crate::events::metrics,
        crate::events::openapi_json,
    ),
    components(schemas(
        wire::GaItem, wire::BestAvailableBody, wire::ReserveBody, wire::ReservationView,
        wire::CommitBody, wire::ExtendBody, wire::TicketView, wire::OrderView, wire::RefundBody,
        wire::RefundView, wire::TransferBody, wire::CheckInBody, wire::SeatBody, wire::PoolBody,
        wire::SaleWindowBody, wire::PolicyBody, wire::CreateEventBody, wire::EventView,
        wire::EventList, wire::SeatMapSeat, wire::PoolStatus, wire::SeatMap, wire::BlockBody,
        wire::PoolUpdateBody, wire::Health, wire::Problem, crate::queue::JoinBody,
        crate::queue::QueueView, crate::queue::RoomView, crate::waitlist::WaitlistJoinBody,
        crate::waitlist::WaitlistView,
    ))
)]
pub struct ApiDoc;

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as JSON bytes.
pub(crate) fn document_json() -> Result<Bytes, serde_json::Error> {
    serde_json::to_vec(&openapi()).map(Bytes::from)
}
