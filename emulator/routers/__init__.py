"""One router per emulated service (DDS, DMS, domain server) plus the admin API."""
