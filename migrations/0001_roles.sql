-- Group roles the deployment's login roles join: the API and worker log in as a member
-- of inventory_app; the replica's subscription connects as a member of
-- inventory_replication (which also needs the REPLICATION attribute on its login role).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'inventory_app') THEN
        CREATE ROLE inventory_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'inventory_replication') THEN
        CREATE ROLE inventory_replication NOLOGIN;
    END IF;
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO inventory_app, inventory_replication;
