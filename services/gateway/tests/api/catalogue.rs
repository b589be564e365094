//! Browsing through the gateway: inventory's catalogue as it is, seats without booking ids.

use faultline_contracts::http::{ConcertView, SeatView};
use faultline_harness::{Backend, both_backends};

use crate::helpers::{problem, spawn_app};

both_backends!(
    the_catalogue_is_inventorys,
    seats_are_listed_without_booking_ids_and_unknown_schedules_are_404,
);

async fn the_catalogue_is_inventorys(backend: Backend) {
    let app = spawn_app(backend).await;
    let through_gateway: Vec<ConcertView> = app
        .get_as("user-1", "/concerts")
        .await
        .json()
        .await
        .expect("concerts json");
    let from_inventory: Vec<ConcertView> = app
        .http
        .get(format!("{}/concerts", app.inventory))
        .send()
        .await
        .expect("GET inventory")
        .json()
        .await
        .expect("concerts json");
    assert_eq!(through_gateway, from_inventory);
    assert_eq!(through_gateway.len(), 1);
    assert_eq!(through_gateway[0].concert_id, "concert-1");
}

async fn seats_are_listed_without_booking_ids_and_unknown_schedules_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let seats: Vec<SeatView> = app
        .get_as("user-1", "/schedules/sched-1/seats")
        .await
        .json()
        .await
        .expect("seats json");
    assert_eq!(seats.len(), 3);
    assert!(seats.iter().all(|seat| seat.booking_id.is_none()));

    // Not in the catalogue: inventory's 404, passed on.
    problem(app.get_as("user-1", "/schedules/sched-9/seats").await, 404).await;
    // Not an id at all: the gateway's own 404, upstream never asked.
    for id in ["a%20b", "a%2Fb"] {
        let detail = problem(
            app.get_as("user-1", &format!("/schedules/{id}/seats"))
                .await,
            404,
        )
        .await;
        assert!(detail.starts_with("no schedule"), "{id}: {detail}");
    }
}
