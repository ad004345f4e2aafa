//! Components shared by the pages.

pub mod incident_card;
pub mod lang_switch;
pub mod poll;
pub mod secret_once;
pub mod sidebar;
pub mod status_badge;
pub mod time;
pub mod tokens_panel;
