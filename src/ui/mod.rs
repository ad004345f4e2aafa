//! Components shared by the pages.

pub mod alert_list;
pub mod form_error;
pub mod incident_card;
pub mod lang_switch;
pub mod live;
pub mod progress_bar;
pub mod recap;
pub mod secret_form;
pub mod sidebar;
pub mod signed_in;
pub mod status_badge;
pub mod time;
pub mod tokens_panel;
