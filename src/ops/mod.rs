//! What each button does: builds a Plan of Steps from config and submits it.
pub mod actions;
