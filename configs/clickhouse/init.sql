-- The database the ClickHouse sinks write to; their tables are created by
-- the sink (auto.create: ReplacingMergeTree(_version) in upsert mode).
CREATE DATABASE IF NOT EXISTS analytics
