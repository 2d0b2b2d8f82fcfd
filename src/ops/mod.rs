//! What each button does: builds a Plan of Steps from config and submits it.
pub mod actions;
pub mod approval;
mod command;
pub mod deploy;
pub mod health;
pub mod health_watch;
pub mod overdue_watch;
mod params;
pub mod restore;
pub mod rollback;
pub mod schedule;
pub mod secret_age;
mod secret_places;
pub mod secret_set;
pub mod secrets;
pub mod sweeps;
pub mod webhook;
pub mod what_ships;
