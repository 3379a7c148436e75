-- 0002: ownership of singleton processors. A row is a lease: owner holds
-- processor until expires_at, by the database's clock. It changes only by
-- compare-and-set (take it if expired, renew it if held), and token grows by
-- one each time the lease changes hands, so work stamped with an older token
-- can be refused (fencing). Releasing a lease expires it but keeps the row,
-- so the token never goes back.
CREATE TABLE singleton_leases (
    processor   text        PRIMARY KEY,
    owner       text        NOT NULL,
    token       bigint      NOT NULL,
    expires_at  timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL -- when owner took it (a renewal keeps it)
);
