"""Use cases. Each function changes state, records an audit event, flushes, never commits."""
