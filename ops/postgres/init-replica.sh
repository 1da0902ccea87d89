#!/bin/sh
# The replica's first start (docker-entrypoint-initdb.d runs this once, on an empty volume):
# the `inventory` database and the API's login role. `inventory migrate` creates the
# read-side schema and the subscription to the primary.
#
# The projections' 0001 creates the group role too, but the login role must join it now,
# so it is created here first when missing. The password reaches psql through \getenv.
set -e
: "${INVENTORY_APP_PASSWORD:?must be set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\getenv app_password INVENTORY_APP_PASSWORD

SELECT 'CREATE DATABASE inventory'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'inventory') \gexec

SELECT 'CREATE ROLE inventory_app NOLOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'inventory_app') \gexec

SELECT 'CREATE ROLE inventory'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'inventory') \gexec

-- The API and worker: members of inventory_app, nothing more.
ALTER ROLE inventory WITH LOGIN NOREPLICATION PASSWORD :'app_password';
GRANT inventory_app TO inventory;
SQL
