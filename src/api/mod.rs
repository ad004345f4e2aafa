//! Server functions: the browser's door to the services in `server/`.

pub mod job_status;
