-- Failed logins count per client network (an IPv4 address, an IPv6 /64), which each login's
-- audit row names in details->>'client_net' (server/accounts/login.rs).
CREATE INDEX idx_audit_events_login_net ON audit_events ((details->>'client_net'), at)
    WHERE action = 'login';
-- Counted per network now, not per address.
DROP INDEX idx_audit_events_login_addr;
