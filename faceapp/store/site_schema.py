"""The site's PostgreSQL schema: versioned migrations, the replicated tables, the two roles.

Every replicated table carries ``rev``, set from one global sequence by a trigger on each insert
and update; a deletion leaves a row in ``tombstones`` with its own rev. The same triggers take
one transaction-scoped advisory lock, so writers commit in rev order and a station that pulled
everything up to rev N never misses a row committed later with a smaller rev. They also
``pg_notify('faceapp_site')``, delivered at commit, which wakes the stations.

``audit`` is append-only here too: triggers refuse UPDATE, DELETE and TRUNCATE, and neither
role is granted them.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNEL = "faceapp_site"
LOCK_KEY = 80_710_010   # pg_advisory_xact_lock key serialising site writers


@dataclass(frozen=True)
class SiteTable:
    """A table replicated from the site to every station: its key and copied columns."""

    name: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    unique_name: bool = False    # has a case-insensitive unique ``name``


# Parents before children (pull and push insert in this order, delete in the reverse one).
TABLES: tuple[SiteTable, ...] = (
    SiteTable("people", ("id",), ("id", "name", "employee_id", "department", "active", "created"), True),
    SiteTable("photos", ("id",), ("id", "person_id", "crop", "quality", "source", "created")),
    SiteTable("templates", ("id",), ("id", "person_id", "photo_id", "model_id", "embedding", "created")),
    # A face an administrator said is not this person (visitors issue): part of the person.
    SiteTable("negatives", ("id",), ("id", "person_id", "model_id", "embedding", "entry_id", "created")),
    SiteTable("doors", ("id",), ("id", "name", "hours", "created", "liveness"), True),
    SiteTable("access_groups", ("id",), ("id", "name", "created"), True),
    SiteTable("person_groups", ("person_id", "group_id"), ("person_id", "group_id")),
    SiteTable("door_groups", ("door_id", "group_id"), ("door_id", "group_id", "hours")),
    SiteTable("settings", ("key",), ("key", "value")),
    SiteTable("credentials", ("role",), ("role", "scheme", "params", "salt", "hash", "updated")),
    SiteTable("entries", ("uid",), ("uid", "station", "time", "door", "person_id", "person_name", "decision",
                                    "distance", "snapshot", "track_id", "reason")),
)
TABLE = {t.name: t for t in TABLES}
AUDIT_COLUMNS = ("uid", "station", "time", "actor", "action", "target", "details")

_FK = "DEFERRABLE INITIALLY DEFERRED"

_V1 = f"""
CREATE TABLE site_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE SEQUENCE site_rev;
CREATE TABLE tombstones (rev bigint PRIMARY KEY, tbl text NOT NULL, pk text NOT NULL);
CREATE TABLE people (
    id bigint PRIMARY KEY, name text NOT NULL, employee_id text, department text,
    active integer NOT NULL DEFAULT 1, created text NOT NULL, rev bigint NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX people_name ON people (lower(name));
CREATE TABLE photos (
    id bigint PRIMARY KEY, person_id bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE {_FK},
    crop bytea NOT NULL, quality double precision, source text, created text NOT NULL,
    rev bigint NOT NULL DEFAULT 0);
CREATE INDEX photos_person ON photos(person_id);
CREATE TABLE templates (
    id bigint PRIMARY KEY, person_id bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE {_FK},
    photo_id bigint REFERENCES photos(id) ON DELETE CASCADE {_FK}, model_id text NOT NULL,
    embedding bytea NOT NULL, created text NOT NULL, rev bigint NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX templates_photo_model ON templates(photo_id, model_id);
CREATE INDEX templates_person ON templates(person_id);
CREATE TABLE negatives (
    id bigint PRIMARY KEY, person_id bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE {_FK},
    model_id text NOT NULL, embedding bytea NOT NULL, entry_id bigint, created text NOT NULL,
    rev bigint NOT NULL DEFAULT 0);
CREATE TABLE doors (id bigint PRIMARY KEY, name text NOT NULL, hours text, created text NOT NULL,
    liveness text NOT NULL DEFAULT 'off', rev bigint NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX doors_name ON doors (lower(name));
CREATE TABLE access_groups (id bigint PRIMARY KEY, name text NOT NULL, created text NOT NULL,
    rev bigint NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX access_groups_name ON access_groups (lower(name));
CREATE TABLE person_groups (
    person_id bigint NOT NULL REFERENCES people(id) ON DELETE CASCADE {_FK},
    group_id bigint NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE {_FK},
    rev bigint NOT NULL DEFAULT 0, PRIMARY KEY (person_id, group_id));
CREATE TABLE door_groups (
    door_id bigint NOT NULL REFERENCES doors(id) ON DELETE CASCADE {_FK},
    group_id bigint NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE {_FK},
    hours text, rev bigint NOT NULL DEFAULT 0, PRIMARY KEY (door_id, group_id));
CREATE TABLE settings (key text PRIMARY KEY, value text NOT NULL, rev bigint NOT NULL DEFAULT 0);
CREATE TABLE credentials (role text PRIMARY KEY, scheme text NOT NULL, params text NOT NULL, salt bytea NOT NULL,
    hash bytea NOT NULL, updated text NOT NULL, rev bigint NOT NULL DEFAULT 0);
CREATE TABLE entries (
    uid text PRIMARY KEY, station text, time text NOT NULL, door text NOT NULL,
    person_id bigint REFERENCES people(id) ON DELETE SET NULL {_FK}, person_name text,
    decision text NOT NULL, distance double precision, snapshot bytea, track_id bigint, reason text,
    rev bigint NOT NULL DEFAULT 0);
CREATE INDEX entries_time ON entries(time);
CREATE INDEX entries_person ON entries(person_id);
CREATE TABLE audit (
    seq bigserial PRIMARY KEY, uid text NOT NULL UNIQUE, station text, time text NOT NULL,
    actor text NOT NULL, action text NOT NULL, target text, details text NOT NULL DEFAULT '{{}}');
CREATE INDEX audit_time ON audit(time);

CREATE FUNCTION site_touch() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK_KEY});
    NEW.rev := nextval('site_rev');
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NEW;
END $$;

CREATE FUNCTION site_tombstone() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    k jsonb := '[]'::jsonb;
    c text;
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK_KEY});
    FOREACH c IN ARRAY TG_ARGV LOOP
        k := k || jsonb_build_array(to_jsonb(OLD) -> c);
    END LOOP;
    INSERT INTO tombstones (rev, tbl, pk) VALUES (nextval('site_rev'), TG_TABLE_NAME, k::text);
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN OLD;
END $$;

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"""


def _triggers_sql() -> str:
    out = []
    for t in TABLES:
        args = ", ".join(f"'{k}'" for k in t.keys)
        out.append(f"CREATE TRIGGER {t.name}_rev BEFORE INSERT OR UPDATE ON {t.name} "
                   f"FOR EACH ROW EXECUTE FUNCTION site_touch();")
        out.append(f"CREATE TRIGGER {t.name}_tombstone AFTER DELETE ON {t.name} "
                   f"FOR EACH ROW EXECUTE FUNCTION site_tombstone({args});")
        out.append(f"CREATE INDEX {t.name}_rev_idx ON {t.name}(rev);")
    return "\n".join(out)


# Append new steps; never edit a released one. site_meta.schema holds the number applied.
MIGRATIONS: tuple[str, ...] = (_V1 + _triggers_sql(),)
SCHEMA_VERSION = len(MIGRATIONS)

_DATA = ", ".join(t.name for t in TABLES)

ROLES_SQL = f"""-- faceapp site roles. Run as the database owner (psql -d DB -f roles.sql) after `faceapp site create`.
-- Replace the two passwords. Door stations use faceapp_station; the PCs where people are
-- enrolled and doors configured use faceapp_admin.
CREATE ROLE faceapp_station LOGIN PASSWORD 'change-me-station';
CREATE ROLE faceapp_admin LOGIN PASSWORD 'change-me-admin';
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO faceapp_station, faceapp_admin;

-- A door station reads people, templates, doors and settings, and adds entries and audit rows.
-- It cannot change people nor delete anything.
GRANT SELECT ON site_meta, tombstones, {_DATA}, audit TO faceapp_station;
GRANT INSERT ON entries, audit TO faceapp_station;
GRANT USAGE ON SEQUENCE audit_seq_seq TO faceapp_station;

-- The administrator changes people, photos, templates, doors, groups, site settings and the
-- password; the audit log only grows (no UPDATE, DELETE or TRUNCATE is granted, and triggers
-- refuse them even to the owner).
GRANT SELECT ON site_meta, tombstones, audit TO faceapp_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON {_DATA} TO faceapp_admin;
GRANT INSERT ON audit TO faceapp_admin;
GRANT USAGE ON SEQUENCE audit_seq_seq TO faceapp_admin;
"""
