-- One database per service (run once, by the postgres image's entrypoint, on an empty data
-- directory). Services never share a database: each one's URL names only its own, and each
-- reaches PostgreSQL through its own Toxiproxy proxy (deploy/toxiproxy/toxiproxy.json).
CREATE DATABASE reservation;
CREATE DATABASE inventory;
CREATE DATABASE payment;
CREATE DATABASE analytics;
