#!/bin/sh
# The primary's first start (docker-entrypoint-initdb.d runs this once, on an empty volume):
# the `inventory` database and the login roles. `inventory migrate` creates the schema.
#
# Migration 0001 creates the group roles too, but login roles must join them now, so they
# are created here first when missing (the migration then leaves them as they are).
# Passwords reach psql through \getenv, never through a command line.
set -e
: "${INVENTORY_APP_PASSWORD:?must be set}"
: "${INVENTORY_REPLICATOR_PASSWORD:?must be set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\getenv app_password INVENTORY_APP_PASSWORD
\getenv replicator_password INVENTORY_REPLICATOR_PASSWORD

SELECT 'CREATE DATABASE inventory'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'inventory') \gexec

SELECT format('CREATE ROLE %I NOLOGIN', name)
  FROM (VALUES ('inventory_app'), ('inventory_replication')) AS wanted (name)
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \gexec

SELECT format('CREATE ROLE %I', name)
  FROM (VALUES ('inventory'), ('inventory_replicator')) AS wanted (name)
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \gexec

-- The API and worker: members of inventory_app, nothing more.
ALTER ROLE inventory WITH LOGIN NOREPLICATION PASSWORD :'app_password';
GRANT inventory_app TO inventory;

-- The replica's subscription: REPLICATION for the slot, inventory_replication for SELECT.
ALTER ROLE inventory_replicator WITH LOGIN REPLICATION PASSWORD :'replicator_password';
GRANT inventory_replication TO inventory_replicator;
SQL
