-- The database the Postgres mirror sink (configs/pipeline/shop-mirror.json)
-- writes to; its tables are created by the sink (auto.create). Runs in any
-- database of the server (docker compose: before shop.sql).
CREATE DATABASE mirror;
