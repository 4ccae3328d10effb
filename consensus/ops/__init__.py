"""Operating the platform: backup and restore, the allocator tuning of web workers."""
